"""Property-based tests of the public API's inputs: any prompt, any ``max_tokens``/``temperature``
(wrong types included) gives either a typed error before anything is sent, or a correct call —
never a crash from inside orkestra."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import orkestra as o
from orkestra.resilience import default_breaker
from orkestra.testing import FakeProviderServer

SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# A huge prompt is drawn as (piece, repeat) and built in the test: hypothesis prints the
# arguments of failing (and shrinking) examples, and a 200k-character repr is no use to anyone.
prompt_specs = st.one_of(
    st.text(),  # arbitrary unicode (no surrogates), empty and whitespace-only included
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=50),
    # up to 200k characters
    st.tuples(st.sampled_from(["a", "é", "字", "🙂", " word"]), st.integers(0, 40_000)),
)


def build(spec: str | tuple[str, int]) -> str:
    return spec if isinstance(spec, str) else spec[0] * spec[1]


max_tokens = st.one_of(
    st.integers(-5, 5),
    st.integers(6, 200_000),
    st.integers(2**31, 2**70),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.text(max_size=3),
)
temperatures = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(0, 2),
    st.integers(-3, 3),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
)
providers = st.sampled_from(["google", "anthropic", "openai"])


@pytest.fixture(autouse=True)
def _fresh_breaker() -> Iterator[None]:
    default_breaker().reset()
    yield
    default_breaker().reset()


def _valid(prompt: object, tokens: object, temperature: object) -> bool:
    return (
        isinstance(prompt, str)
        and bool(prompt.strip())
        and isinstance(tokens, int)
        and not isinstance(tokens, bool)
        and tokens >= 1
        and isinstance(temperature, (int, float))
        and not isinstance(temperature, bool)
        and math.isfinite(temperature)
        and 0 <= temperature <= 2
    )


def _check(fake: FakeProviderServer, call: object, prompt: object, tokens: object, temp: object):
    fake.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", o.OrkestraWarning)  # clamping/temperature notices
        try:
            result = call()  # type: ignore[operator]
        except o.OrkestraError as error:
            if isinstance(error, o.ConfigurationError):
                assert fake.requests == []  # refused before anything was sent
                assert not _valid(prompt, tokens, temp)
            return error
    assert _valid(prompt, tokens, temp)
    return result


@SETTINGS
@given(name=providers, spec=prompt_specs, tokens=max_tokens, temperature=temperatures)
def test_chat_accepts_anything_or_refuses_cleanly(
    fake: FakeProviderServer,
    name: str,
    spec: str | tuple[str, int],
    tokens: int,
    temperature: float,
) -> None:
    prompt = build(spec)
    with o.Provider(name, fake.api_key, retry=o.RetryPolicy(max_retries=0)) as p:
        result = _check(
            fake,
            lambda: p.chat(prompt, max_tokens=tokens, temperature=temperature),
            prompt,
            tokens,
            temperature,
        )
    if isinstance(result, o.Response):
        assert result.provider == name
        assert result.usage.output_tokens <= max(1, min(tokens, 2**31))
        assert result.cost >= 0 and result.total_cost >= result.cost
        assert len(result.attempts) == len(fake.requests) == 1


@SETTINGS
@given(
    name=providers,
    spec=prompt_specs.filter(lambda s: bool(build(s).strip())),
    tokens=st.one_of(st.integers(1, 100), st.integers(1, 2**40)),
    temperature=st.one_of(st.floats(0, 2), st.integers(0, 2)),
    stream=st.booleans(),
)
def test_every_valid_request_is_answered(
    fake: FakeProviderServer,
    name: str,
    spec: str | tuple[str, int],
    tokens: int,
    temperature: float,
    stream: bool,
) -> None:
    prompt = build(spec)
    fake.clear()
    with (
        warnings.catch_warnings(),
        o.Provider(name, fake.api_key, retry=o.RetryPolicy(max_retries=0)) as p,
    ):
        warnings.simplefilter("ignore", o.OrkestraWarning)
        if stream:
            s = p.stream(prompt, max_tokens=tokens, temperature=temperature)
            text = "".join(s)
            response = s.response
            assert response is not None and response.text == text
        else:
            response = p.chat(prompt, max_tokens=tokens, temperature=temperature)
    assert response.usage.input_tokens > 0
    assert response.cost == pytest.approx(response.total_cost)
    assert [a.ok for a in response.attempts] == [True]


@SETTINGS
@given(name=providers, spec=prompt_specs, tokens=max_tokens, temperature=temperatures)
def test_streaming_accepts_anything_or_refuses_cleanly(
    fake: FakeProviderServer,
    name: str,
    spec: str | tuple[str, int],
    tokens: int,
    temperature: float,
) -> None:
    prompt = build(spec)
    with o.Provider(name, fake.api_key, retry=o.RetryPolicy(max_retries=0)) as p:

        def call() -> str:
            return "".join(p.stream_text(prompt, max_tokens=tokens, temperature=temperature))

        result = _check(fake, call, prompt, tokens, temperature)
    if isinstance(result, str):
        assert len(fake.requests) == 1 and fake.requests[0].stream


@SETTINGS
@given(
    spec=prompt_specs,
    strategy=st.one_of(st.sampled_from(["cheapest", "smartest", "balanced"]), st.text(max_size=8)),
    quality=st.one_of(
        st.none(), st.floats(allow_nan=True), st.integers(-2, 2), st.text(max_size=2)
    ),
)
def test_multi_provider_inputs(
    fake: FakeProviderServer, spec: str | tuple[str, int], strategy: str, quality: float | None
) -> None:
    prompt = build(spec)
    m = o.MultiProvider([o.Provider(n, fake.api_key) for n in ("google", "anthropic", "openai")])
    fake.clear()
    try:
        response = m.chat(prompt, strategy=strategy, quality=quality, max_tokens=64)
    except o.ConfigurationError:
        assert fake.requests == []
        return
    finally:
        m.close()
    assert strategy in {"cheapest", "smartest", "balanced", ""}  # "": the default strategy
    assert response.text and response.cost >= 0


@settings(max_examples=50, deadline=None)
@given(
    cap=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), st.none()),
    share=st.one_of(st.floats(allow_nan=True), st.integers(-1, 2)),
    expected=st.floats(min_value=0, max_value=10),
)
def test_budget_inputs(cap: float | None, share: float, expected: float) -> None:
    try:
        budget = o.Budget(cap, prefer_cheaper_at=share)
    except o.InvalidRequestError:
        return
    try:
        budget.reserve(expected).settle(expected)
    except o.BudgetExceededError:
        assert budget.cap is not None and expected > budget.cap
        return
    assert budget.spent == pytest.approx(expected)


@settings(max_examples=50, deadline=None)
@given(
    retries=st.one_of(st.integers(-3, 10), st.booleans(), st.floats(allow_nan=True)),
    timeout=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2, 700)),
    fallback=st.one_of(
        st.none(), st.sampled_from(["up-then-down", "up", "none"]), st.text(max_size=5)
    ),
)
def test_provider_options(retries: int, timeout: float, fallback: str | None) -> None:
    try:
        p = o.Provider("openai", "k", max_retries=retries, timeout=timeout, fallback=fallback)
    except o.InvalidRequestError:
        return
    assert p.retry.max_retries == retries and p.timeouts.read == timeout
