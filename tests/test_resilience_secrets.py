"""Secrets and hygiene: the API key never shows up anywhere we produce, on any failure path; no
code path unpickles data, evaluates code, or downloads without HTTPS and a sha256."""

from __future__ import annotations

import ast
import logging
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import orkestra as o
from orkestra.resilience import default_breaker
from orkestra.routing.artifacts import fetch_router
from orkestra.testing import FakeProviderServer, Fault

SECRET = "sk-test-SECRET-key-0123456789abcdefXYZ"
PROVIDERS = ("google", "anthropic", "openai")
FAST = o.RetryPolicy(base_delay=0.001, max_delay=0.002)


@pytest.fixture
def secret_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProviderServer]:
    with FakeProviderServer(api_key=SECRET) as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        yield server
    default_breaker().reset()


def _leaks(text: str) -> list[str]:
    pieces = [SECRET, SECRET[: len(SECRET) // 2], SECRET[-16:]]
    return [p for p in pieces if p in text]


def _every_failure(server: FakeProviderServer) -> Iterator[object]:
    """Drive every failure path with the secret key; yield each object we hand back."""
    opened: list[o.Provider] = []

    def make(name: str, key: str = SECRET, **kwargs: object) -> o.Provider:
        options: dict[str, object] = {"retry": FAST, "circuit_breaker": o.CircuitBreaker()}
        opened.append(o.Provider(name, key, **{**options, **kwargs}))  # type: ignore[arg-type]
        return opened[-1]

    try:
        for name in PROVIDERS:
            yield from _failures_of(name, server, make)
        yield o.MultiProvider([make(n) for n in PROVIDERS], budget=1.0)
    finally:
        for p in opened:
            p.close()


def _failures_of(
    name: str, server: FakeProviderServer, make: Callable[..., o.Provider]
) -> Iterator[object]:
    p = make(name, circuit_breaker=o.CircuitBreaker(2, 60.0))
    yield p
    yield p.adapter
    server.queue(Fault.status(429), provider=name, times=2)
    response = p.chat("hello")  # retried, then fell back
    yield response
    yield from response.attempts
    for fault in (Fault.status(500), Fault.drop(), Fault.status(400), Fault.delay(0.3)):
        server.queue(fault, provider=name, times=20)
        try:
            make(name, timeout=0.05, fallback="none").chat("hello")
        except o.OrkestraError as e:
            yield e
        server.clear()
    server.queue(Fault.cut_stream(after_chunks=1), provider=name)
    try:
        list(p.stream_text("Write a poem about the sea"))
    except o.StreamInterruptedError as e:
        yield e
    server.queue(Fault.status(503), times=200)
    for _ in range(3):  # open every circuit, then meet CircuitOpenError
        try:
            p.chat("hello")
        except o.OrkestraError as e:
            yield e
    server.clear()
    try:  # a near-miss key: the provider's echo of it must not leak it either
        make(name, SECRET[:-3] + "zzz").chat("hello")
    except o.AuthenticationError as e:
        yield e
    try:
        make(name, budget=0.0).chat("hello")
    except o.BudgetExceededError as e:
        yield e


def test_the_key_appears_in_no_output_repr_error_traceback_or_log(
    secret_server: FakeProviderServer,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the SDKs' and httpx's included
    seen: list[str] = []
    kinds: set[str] = set()
    for item in _every_failure(secret_server):
        kinds.add(type(item).__name__)
        seen += [repr(item), str(item)]
        if isinstance(item, BaseException):
            seen.append("".join(traceback.format_exception(item)))  # causes chained in
            seen += [repr(a) for a in item.attempts]
    out = capsys.readouterr()
    seen += [out.out, out.err, caplog.text]
    seen += [r.getMessage() for r in caplog.records]
    assert {
        "Provider",
        "Response",
        "Attempt",
        "ProviderUnavailableError",
        "ProviderConnectionError",
        "ProviderTimeoutError",
        "BadRequestError",
        "StreamInterruptedError",
        "CircuitOpenError",
        "AuthenticationError",
        "BudgetExceededError",
        "MultiProvider",
    } <= kinds
    assert caplog.records  # the paths above did log
    leaks = [(text[:200], _leaks(text)) for text in seen if _leaks(text)]
    assert leaks == []


# -- hygiene ---------------------------------------------------------------------------------

SRC = Path(__file__).resolve().parent.parent / "src" / "orkestra"
FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "marshal", "shelve", "joblib", "cloudpickle"}
FORBIDDEN_CALLS = {"eval", "exec", "__import__"}


def _python_files() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_no_code_path_unpickles_or_evaluates() -> None:
    problems: list[str] = []
    for path in _python_files():
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                names.append(getattr(node, "module", None) or "")
                bad = {n.split(".")[0] for n in names} & FORBIDDEN_MODULES
                problems += [f"{path.name}: imports {b}" for b in bad]
            if isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                    problems.append(f"{path.name}:{node.lineno}: {func.id}()")
                for kw in node.keywords:  # np.load(..., allow_pickle=True), torch.load(...)
                    if kw.arg == "allow_pickle" and not (
                        isinstance(kw.value, ast.Constant) and kw.value.value is False
                    ):
                        problems.append(f"{path.name}:{node.lineno}: allow_pickle")
    assert problems == []


def test_router_downloads_need_https_and_a_sha256() -> None:
    with pytest.raises(o.ConfigurationError, match="https"):
        fetch_router("http://example.com/router.tar.gz", sha256="0" * 64)
    with pytest.raises(o.ConfigurationError, match="sha256"):
        fetch_router("https://example.com/router.tar.gz")
    with pytest.raises(o.ConfigurationError, match="scheme"):
        fetch_router("ftp://example.com/router.tar.gz", sha256="0" * 64)
