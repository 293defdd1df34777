"""The config file's one typed schema: the committed JSON Schema is current, accepts every
config the docs show and refuses what the loader refuses; errors stay the proxy's own words."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]
from test_config import ENV, TOML, YAML

from orkestra import ConfigurationError
from orkestra.server import ProviderConfig, ServerConfig, load_config
from orkestra.server.config_schema import config_json_schema, config_schema_text

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "orkestra-config.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(COMMITTED.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schema_is_current() -> None:
    assert COMMITTED.read_text() == config_schema_text(), (
        "docs/orkestra-config.schema.json is stale: "
        "python -m orkestra.server --print-config-schema > docs/orkestra-config.schema.json"
    )


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "orkestra.server", "--print-config-schema"],
        ["-c", "from orkestra.cli import main; main()", "serve", "--print-config-schema"],
    ],
)
def test_both_commands_print_it(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, *command], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == config_json_schema()


def doc_configs() -> list[tuple[str, Any]]:
    """Every TOML and YAML config block of docs/proxy.md and docs/deploy.md, and the file
    compose.yaml mounts."""
    found: list[tuple[str, Any]] = []
    for doc in ("proxy.md", "deploy.md"):
        text = (ROOT / "docs" / doc).read_text()
        for i, (lang, block) in enumerate(re.findall(r"```(toml|yaml)\n(.*?)```", text, re.S)):
            if lang == "yaml" and "services:" in block:
                continue
            # The docs shorten hashes ("3e8d89f76b0f…"): a whole one in their place.
            body = re.sub(r"\b([0-9a-f]{12})…", lambda m: m.group(1) + "0" * 52, block)
            parsed = tomllib.loads(body) if lang == "toml" else yaml.safe_load(body)
            found.append((f"{doc}#{i}", parsed))
    found.append(
        ("deploy/orkestra.toml", tomllib.loads((ROOT / "deploy/orkestra.toml").read_text()))
    )
    return found


@pytest.mark.parametrize(
    ("where", "data"), doc_configs(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_documented_config_is_valid_by_the_schema(
    validator: jsonschema.Draft202012Validator, where: str, data: Any
) -> None:
    errors = [e.message for e in validator.iter_errors(data)]
    assert errors == [], where


@pytest.mark.parametrize("text", [TOML, YAML])
def test_the_loaders_full_example_is_valid_by_the_schema(
    validator: jsonschema.Draft202012Validator, text: str
) -> None:
    data = tomllib.loads(text) if text is TOML else yaml.safe_load(text)
    assert list(validator.iter_errors(data)) == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"serve": {"port": 1}}, "serve"),
        ({"server": {"port": 70000}}, "server.port"),
        ({"server": {"port": "8000"}}, "server.port"),
        ({"server": {"workers": 0}}, "server.workers"),
        ({"routing": {"strategy": "fastest"}}, "routing.strategy"),
        ({"routing": {"quality": 1.5}}, "routing.quality"),
        ({"routing": {"timeout": 0}}, "routing.timeout"),
        ({"routing": {"max_retries": True}}, "routing.max_retries"),
        ({"usage": {"database_url_env": "not a name"}}, "usage.database_url_env"),
        ({"metrics": {"enabled": "yes"}}, "metrics.enabled"),
        ({"tracing": {"exporter": "jaeger"}}, "tracing.exporter"),
        ({"providers": {"openai": {"api_key": "sk-live-abc"}}}, "providers.openai.api_key"),
        ({"providers": {"openai": {"budget_usd": -1}}}, "providers.openai.budget_usd"),
        ({"keys": [{"sha256": "a" * 64}]}, "keys[0].name"),
        ({"keys": [{"name": "a", "sha256": "xyz"}]}, "keys[0].sha256"),
        ({"keys": [{"name": "a", "key": "ok-secret"}]}, "keys[0].key"),
    ],
)
def test_what_the_loader_refuses_the_schema_refuses(
    validator: jsonschema.Draft202012Validator, data: dict[str, Any], field: str
) -> None:
    assert list(validator.iter_errors(data)), "the schema accepts it"
    env = {**ENV, "TEAM_KEY": "ok-" + "t" * 40}
    with pytest.raises(ConfigurationError) as caught:
        ServerConfig.from_mapping(
            {"providers": {"openai": {}}, **data}, source="x.toml", environ=env
        )
    message = str(caught.value)
    assert message.startswith(f"x.toml: {field}: "), message
    assert "pydantic" not in message.lower() and "validation error" not in message
    assert "sk-live-abc" not in message and "ok-secret" not in message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"server": {"port": 70000}}, "server.port: must be an integer in [0, 65535], not 70000"),
        ({"server": {"port": "8000"}}, "server.port: must be an integer, not '8000'"),
        (
            {"routing": {"strategy": "fastest"}},
            "routing.strategy: 'fastest' is not one of 'cheapest', 'smartest', 'balanced'",
        ),
        (
            {"routing": {"quality": float("nan")}},
            "routing.quality: must be a finite number, not nan",
        ),
        ({"serve": {}}, "serve: unknown field"),
        (
            {"keys": [{"name": "a", "sha256": "xyz"}]},
            "keys[0].sha256: expected 64 hex digits (python -m orkestra.server --hash-key)",
        ),
        (
            {"keys": [{"sha256": "a" * 64}]},
            "keys[0].name: missing: give each key a name (it is shown in logs)",
        ),
        ({"keys": ["team-a"]}, "keys[0]: must be a table with name and sha256 (or key_env)"),
        (
            {"providers": {"openai": None}},
            "providers.openai: must be a table (an empty one serves it with defaults)",
        ),
    ],
)
def test_errors_are_the_proxys_own_words(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ServerConfig.from_mapping(data, source="orkestra.toml", environ=ENV)
    assert str(caught.value) == f"orkestra.toml: {message}"


def test_several_errors_say_how_many_more() -> None:
    with pytest.raises(ConfigurationError, match=r"server\.port: .* \(and 2 more\)$"):
        ServerConfig.from_mapping(
            {"server": {"port": -1, "workers": 0}, "routing": {"timeout": 0}}, environ=ENV
        )


def test_null_takes_the_default_as_before(tmp_path: Path) -> None:
    path = tmp_path / "orkestra.yaml"
    path.write_text("server:\n  port: ~\nrouting:\nproviders:\n  openai: {}\n")
    config = load_config(path, ENV)
    assert config.port == 8000 and config.strategy == "cheapest"


def test_a_config_built_in_python_meets_the_same_rules() -> None:
    openai = (ProviderConfig("openai"),)
    with pytest.raises(ConfigurationError) as caught:
        ServerConfig(providers=openai, port=70000)
    assert (
        str(caught.value)
        == "ServerConfig: server.port: must be an integer in [0, 65535], not 70000"
    )
    with pytest.raises(ConfigurationError, match=r"server\.host: must be a string, not None"):
        ServerConfig(providers=openai, host=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"providers\.openai\.api_key_env: 'a b' is not"):
        ServerConfig(providers=(ProviderConfig("openai", api_key_env="a b"),))
    assert ServerConfig(providers=openai, timeout=30).timeout == 30


def test_a_bad_file_stops_the_server_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[server]\nport = "8000"\n[providers.openai]\napi_key = "sk-live-abc"\n')
    result = subprocess.run(
        [sys.executable, "-m", "orkestra.server", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"OPENAI_API_KEY": "sk-test", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"orkestra serve: {path}: server.port: must be an integer, not '8000' (and 1 more)"
    )
