"""The config and command-line options of serving: ``[server] workers``, ``[metrics]``, and
what ``--workers`` changes in the config each worker serves."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest

from orkestra import ConfigurationError
from orkestra.server import KeyConfig, ProviderConfig, ServerConfig, run_server
from orkestra.server.run import WorkerApp, per_worker

ENV = {"OPENAI_API_KEY": "sk-test-openai"}


def load(tmp_path: Path, text: str) -> ServerConfig:
    path = tmp_path / "orkestra.toml"
    path.write_text(text)
    return ServerConfig.load(path, environ=ENV)


def test_workers_and_metrics_are_read_from_the_file(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "[server]\nworkers = 4\n[metrics]\nenabled = false\npublic = true\n[providers.openai]\n",
    )
    assert (config.workers, config.metrics, config.metrics_public) == (4, False, True)
    defaults = load(tmp_path, "[providers.openai]\n")
    assert (defaults.workers, defaults.metrics, defaults.metrics_public) == (1, True, False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nworkers = 0\n", "server.workers: must be an integer in [1, 1024], not 0"),
        ("[server]\nworkers = 'two'\n", "server.workers: must be an integer, not 'two'"),
        ("[metrics]\nenabled = 'yes'\n", "metrics.enabled: must be true or false"),
        ("[metrics]\nport = 9100\n", "metrics.port: unknown field"),
    ],
)
def test_bad_serving_options_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        load(tmp_path, text + "[providers.openai]\n")
    assert f"{tmp_path / 'orkestra.toml'}: {message}" in str(error.value)


def test_bad_workers_on_the_command_line_are_refused_before_listening(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai")
    with pytest.raises(ConfigurationError, match=r"--workers: must be an integer in \[1, 1024\]"):
        run_server(None, "127.0.0.1", 0, workers=0)


def test_each_worker_may_spend_its_share_of_a_provider_cap() -> None:
    config = ServerConfig(
        providers=(ProviderConfig("openai", budget_usd=30.0), ProviderConfig("anthropic"))
    )
    shared = per_worker(config, 3)
    assert shared.workers == 3
    assert [p.budget_usd for p in shared.providers] == [10.0, None]
    assert per_worker(config, 1).providers == config.providers


def test_without_a_usage_log_each_worker_may_spend_its_share_of_a_key_cap() -> None:
    keys = (KeyConfig("team", "a" * 64, budget_usd=9.0), KeyConfig("free", "b" * 64))
    config = ServerConfig(providers=(ProviderConfig("openai"),), keys=keys)
    assert per_worker(config, 3).keys == keys  # shared through the usage database
    alone = dataclasses.replace(config, usage_log=False)
    assert [k.budget_usd for k in per_worker(alone, 3).keys] == [3.0, None]


def test_the_worker_app_travels_to_a_spawned_process() -> None:
    config = ServerConfig(providers=(ProviderConfig("openai", api_key_env="OPENAI_API_KEY"),))
    again = pickle.loads(pickle.dumps(WorkerApp(config)))
    assert again.config == config
