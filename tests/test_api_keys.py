"""A provider key that cannot be a key (a line break, a space, a control or non-ASCII
character) is a ConfigurationError when the Provider is made, saying where the key came from
and never echoing it; it used to fail every attempt in the HTTP layer, retried 9 times as a
'connection error' whose message held the key."""

from __future__ import annotations

from pathlib import Path

import pytest

import orkestra as o
from orkestra.server import ServerConfig
from orkestra.server.config import load_config
from orkestra.testing import FakeProviderServer

PROVIDERS = ("google", "anthropic", "openai")
SECRET = "sk-test-SECRET-key-1234567890abcdef"
ENV = {"google": "GOOGLE_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}

BAD_KEYS = [
    (SECRET + "\r\nX-Injected: 1", "a line break at character 35"),
    (SECRET + "\n", "a line break at character 35"),
    ("\n" + SECRET, "a line break at character 0"),
    (SECRET[:10] + " " + SECRET[10:], "whitespace at character 10"),
    (SECRET[:5] + "\t" + SECRET[5:], "whitespace at character 5"),
    (SECRET[:7] + "\x00" + SECRET[7:], "a control character at character 7"),
    (SECRET[:3] + "é" + SECRET[3:], "a non-ASCII character at character 3"),
    ("“" + SECRET + "”", "a non-ASCII character at character 0"),
]


def assert_not_echoed(error: BaseException) -> None:
    for text in (str(error), repr(error), repr(error.args)):
        assert "SECRET" not in text and "1234567890" not in text


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize(("key", "what"), BAD_KEYS)
def test_a_key_that_cannot_be_a_key_is_refused_when_the_provider_is_made(
    name: str, key: str, what: str, fake: FakeProviderServer
) -> None:
    with pytest.raises(o.ConfigurationError) as caught:
        o.Provider(name, key)
    message = str(caught.value)
    assert message.startswith(f"the API key for {name} (the api_key argument) has {what}:")
    assert_not_echoed(caught.value)
    assert fake.requests == []


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_bad_key_in_the_environment_names_the_variable(
    name: str, fake: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV[name], SECRET + "\r\n")
    with pytest.raises(o.ConfigurationError, match=rf"\(\${ENV[name]}\) has a line break") as e:
        o.Provider(name)
    assert_not_echoed(e.value)


def test_a_key_that_is_not_a_string_is_refused(fake: FakeProviderServer) -> None:
    with pytest.raises(o.ConfigurationError, match="must be a str, not bytes"):
        o.Provider("openai", SECRET.encode())  # type: ignore[arg-type]


def test_good_keys_still_work(fake: FakeProviderServer) -> None:
    assert o.Provider("openai", fake.api_key).chat("What is 2+2?").text
    # Every printable ASCII character but the space may be in a key.
    printable = "".join(chr(c) for c in range(0x21, 0x7F))
    assert o.Provider("anthropic", printable).route("What is 2+2?").provider == "anthropic"


def test_the_proxy_refuses_a_bad_key_variable_at_start(tmp_path: Path) -> None:
    env = {"OPENAI_API_KEY": SECRET + "\n"}
    with pytest.raises(o.ConfigurationError, match=r"\(\$OPENAI_API_KEY\) has a line break") as e:
        ServerConfig.from_env(env).providers[0].api_key(env)
    assert_not_echoed(e.value)
    config = tmp_path / "proxy.toml"
    config.write_text('[providers.openai]\napi_key_env = "MY_KEY"\n')
    with pytest.raises(o.ConfigurationError, match=r"\(\$MY_KEY\) has whitespace") as e:
        load_config(config, {"MY_KEY": SECRET + " "})
    assert_not_echoed(e.value)
