"""The proxy's config: TOML and YAML files, the environment alone, and refusals that name the
field; where the server may listen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from proxy_helpers import CLIENT_KEY

from orkestra import ConfigurationError
from orkestra.server import ServerConfig, hash_key, load_config, new_key, run_server
from orkestra.server.run import check_host, is_loopback

ENV = {"OPENAI_API_KEY": "sk-test-openai", "TEAM_KEY": CLIENT_KEY, "MY_ANTHROPIC": "sk-ant-x"}

TOML = f"""
[server]
host = "0.0.0.0"
port = 9000
max_body_bytes = 1048576

[routing]
strategy = "balanced"
quality = 0.7
fallback = "same-tier"
max_retries = 3
timeout = 30

[usage]
database_url = "sqlite:///usage.db"
store_prompts = true
budget_sync_seconds = 2

[providers.openai]
budget_usd = 50

[providers.anthropic]
api_key_env = "MY_ANTHROPIC"
base_url = "http://127.0.0.1:9999"

[[keys]]
name = "team-a"
sha256 = "{hash_key(CLIENT_KEY)}"
budget_usd = 10
budget_window = "30d"

[[keys]]
name = "team-b"
key_env = "TEAM_KEY2"
"""

YAML = f"""
server:
  host: 0.0.0.0
  port: 9000
  max_body_bytes: 1048576
routing:
  strategy: balanced
  quality: 0.7
  fallback: same-tier
  max_retries: 3
  timeout: 30
usage:
  database_url: sqlite:///usage.db
  store_prompts: true
  budget_sync_seconds: 2
providers:
  openai:
    budget_usd: 50
  anthropic:
    api_key_env: MY_ANTHROPIC
    base_url: http://127.0.0.1:9999
keys:
  - name: team-a
    sha256: "{hash_key(CLIENT_KEY)}"
    budget_usd: 10
    budget_window: 30d
  - name: team-b
    key_env: TEAM_KEY2
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("name", "text"), [("orkestra.toml", TOML), ("orkestra.yaml", YAML)])
def test_a_toml_or_yaml_file_gives_the_same_config(tmp_path: Path, name: str, text: str) -> None:
    env = {**ENV, "TEAM_KEY2": "ok-" + "b" * 40}
    config = load_config(write(tmp_path, name, text), env)

    assert (config.host, config.port, config.max_body_bytes) == ("0.0.0.0", 9000, 1048576)
    assert (config.strategy, config.quality, config.fallback) == ("balanced", 0.7, "same-tier")
    assert (config.max_retries, config.timeout) == (3, 30.0)
    assert config.database_url == "sqlite:///usage.db" and config.store_prompts
    assert config.provider_names == ("openai", "anthropic")
    openai, anthropic = config.providers
    assert openai.budget_usd == 50 and openai.api_key(env) == "sk-test-openai"
    assert anthropic.api_key(env) == "sk-ant-x"
    assert anthropic.resolved_base_url(env) == "http://127.0.0.1:9999"
    team_a, team_b = config.keys
    assert team_a.sha256 == hash_key(CLIENT_KEY) and team_a.budget_usd == 10
    assert team_a.budget_window == "30d"
    assert team_b.sha256 == hash_key("ok-" + "b" * 40)
    assert team_b.key_id == hash_key("ok-" + "b" * 40)[:12]


def test_the_config_never_holds_a_key() -> None:
    env = {**ENV, "TEAM_KEY2": "ok-" + "b" * 40}
    config = ServerConfig.from_mapping({"providers": {"openai": {}}}, environ=env)
    assert "sk-test-openai" not in repr(config)


def test_without_a_file_every_provider_with_a_key_variable_is_served() -> None:
    config = ServerConfig.from_env({"OPENAI_API_KEY": "k", "GEMINI_API_KEY": "k"})
    assert set(config.provider_names) == {"openai", "google"}
    assert config.keys == () and config.host == "127.0.0.1" and config.port == 8000


def test_a_key_for_a_provider_without_tiers_does_not_break_the_start() -> None:
    """VLLM_API_KEY set beside OPENAI_API_KEY: vllm has no models until a file names them."""
    env = {"OPENAI_API_KEY": "k", "VLLM_API_KEY": "k", "OPENAI_COMPATIBLE_API_KEY": "k"}
    assert ServerConfig.from_env(env).provider_names == ("openai",)
    with pytest.raises(ConfigurationError, match=r"vllm.*need a config file"):
        ServerConfig.from_env({"VLLM_API_KEY": "k"})


def test_without_a_file_or_a_key_variable_it_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        ServerConfig.from_env({})


def test_a_file_without_providers_uses_the_environment(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "c.toml", "[routing]\nstrategy = 'smartest'\n"), ENV)
    assert config.provider_names == ("openai",) and config.strategy == "smartest"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[routing]\nstrategy = 'fastest'", "routing.strategy"),
        ("[routing]\nquality = 2", "routing.quality"),
        ("[routing]\nquality = 'high'", "routing.quality"),
        ("[routing]\nfallback = 'sideways'", "routing.fallback"),
        ("[routing]\nmax_retries = -1", "routing.max_retries"),
        ("[routing]\nmax_retries = true", "routing.max_retries"),
        ("[routing]\ntimeout = 0", "routing.timeout"),
        ("[routing]\nknob = 1", "routing.knob"),
        ("[server]\nport = 70000", "server.port"),
        ("[server]\nport = '8000'", "server.port"),
        ("[server]\nmax_body_bytes = 10", "server.max_body_bytes"),
        ("[serve]\nport = 1", "serve"),
        ("[usage]\nbudget_sync_seconds = 0", "usage.budget_sync_seconds"),
        ("[usage]\ndatabase_url_env = 'NOPE_NOT_SET'", "usage.database_url_env"),
        ("[providers.openai]\napi_key = 'sk-live-abc'", "providers.openai.api_key"),
        ("[providers.openai]\napi_key_env = 'NOT_SET_ANYWHERE'", "providers.openai"),
        ("[providers.openai]\nbudget_usd = -1", "providers.openai.budget_usd"),
        ("[providers.openai]\nbase_url_env = 'NOT_SET_ANYWHERE'", "providers.openai.base_url_env"),
        ("[providers.cohere]", "providers.cohere"),
        ("providers = {}", "providers"),
        ("[[keys]]\nsha256 = 'ab'", "keys[0].name"),
        ("[[keys]]\nname = 'a'", "keys[0].sha256"),
        ("[[keys]]\nname = 'a'\nsha256 = 'xyz'", "keys[0].sha256"),
        ("[[keys]]\nname = 'a'\nkey = 'ok-secret'", "keys[0].key"),
        ("[[keys]]\nname = 'a'\nkey_env = 'SHORT_KEY'", "keys[0].key_env"),
        ("[[keys]]\nname = 'a'\nkey_env = 'TEAM_KEY'\nbudget_window = 'soon'", "budget_window"),
        (
            f"[[keys]]\nname = 'a'\nkey_env = 'TEAM_KEY'\n[[keys]]\nname = 'b'\n"
            f"sha256 = '{hash_key(CLIENT_KEY)}'",
            "keys[1]",
        ),
    ],
)
def test_an_invalid_config_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    env = {**ENV, "SHORT_KEY": "abc"}
    with pytest.raises(ConfigurationError) as caught:
        load_config(write(tmp_path, "bad.toml", text), env)
    message = str(caught.value)
    assert field in message and "bad.toml" in message
    assert "sk-live-abc" not in message and "ok-secret" not in message


def test_syntax_errors_and_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="invalid TOML"):
        load_config(write(tmp_path, "a.toml", "[server"), ENV)
    with pytest.raises(ConfigurationError, match="invalid YAML"):
        load_config(write(tmp_path, "a.yaml", "server: [1"), ENV)
    with pytest.raises(ConfigurationError, match="top level"):
        load_config(write(tmp_path, "b.yaml", "- 1\n- 2\n"), ENV)
    with pytest.raises(ConfigurationError, match=r"\.toml, \.yaml"):
        load_config(write(tmp_path, "a.ini", "[server]"), ENV)
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_config(tmp_path / "missing.toml", ENV)


def test_keys_helpers() -> None:
    key = new_key()
    assert len(key) > 40 and new_key() != key
    assert hash_key(key) == hash_key(key) and len(hash_key(key)) == 64


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_loopback_names(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_without_keys_it_refuses_to_listen_beyond_this_machine(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    config = ServerConfig.from_env()
    with pytest.raises(ConfigurationError, match="no client keys"):
        check_host(config, host)
    with pytest.raises(ConfigurationError, match="no client keys"):
        run_server(None, host, 0)
    check_host(config, "127.0.0.1")


def test_with_keys_it_may_listen_anywhere(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            "k.toml",
            f"""
[[keys]]
name = "a"
sha256 = "{hash_key(CLIENT_KEY)}"
""",
        ),
        ENV,
    )
    check_host(config, "0.0.0.0")


def test_an_invalid_config_stops_the_server_before_it_listens(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.toml", "[routing]\nstrategy = 'fastest'\n")
    result = subprocess.run(
        [sys.executable, "-m", "orkestra.server", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"OPENAI_API_KEY": "sk-test", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "routing.strategy" in result.stderr and "Traceback" not in result.stderr


def test_hash_key_from_the_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orkestra.server", "--hash-key"],
        input=CLIENT_KEY,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip() == hash_key(CLIENT_KEY)


def test_host_names_and_origins_the_proxy_answers_to(tmp_path: Path) -> None:
    from orkestra.server import ProviderConfig

    openai_only = (ProviderConfig("openai"),)
    keyless = ServerConfig(providers=openai_only)
    assert keyless.hosts == {"127.0.0.1", "localhost", "::1"}
    assert ServerConfig(providers=openai_only, host="[::1]").hosts == {
        "127.0.0.1",
        "localhost",
        "::1",
    }
    keyed = load_config(_write(tmp_path, "k.toml", TOML), {**ENV, "TEAM_KEY2": "ok-" + "b" * 40})
    assert keyed.hosts == {"*"}  # the key protects it, whatever name it is reached by
    chosen = ServerConfig(providers=openai_only, allowed_hosts=("Proxy.Internal", "[::1]"))
    assert chosen.hosts == {"proxy.internal", "::1"}
    config = load_config(
        _write(
            tmp_path,
            "o.yaml",
            "server: {allowed_origins: ['https://app.example.com', 'http://localhost:3000'], "
            "allowed_hosts: [orkestra.lan]}\nproviders: {openai: {}}\n",
        ),
        ENV,
    )
    assert config.allowed_origins == ("https://app.example.com", "http://localhost:3000")
    assert config.hosts == {"orkestra.lan"}


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path
