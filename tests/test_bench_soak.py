"""bench/soak.py's overhead phase copes with circuits the fault phase left open (at
``--fault-rate 0.5`` it crashed with CircuitOpenError), and counts what the layer refuses."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

import orkestra as o
from orkestra.testing import FakeProviderServer

SOAK = Path(__file__).resolve().parent.parent / "bench" / "soak.py"


@pytest.fixture(scope="module")
def soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_soak", SOAK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def open_every_circuit(multi: o.MultiProvider, breaker: o.CircuitBreaker) -> None:
    for provider in multi.providers:
        for model in provider.tier_models().values():
            for _ in range(breaker.failure_threshold):
                breaker.failure((provider.name, model.id))
    assert all(
        breaker.state((p.name, m.id)) == "open"
        for p in multi.providers
        for m in p.tier_models().values()
    )


@pytest.fixture
def multi(fake: FakeProviderServer) -> o.MultiProvider:
    providers = [o.Provider(name) for name in ("google", "anthropic", "openai")]
    return o.MultiProvider(providers, circuit_breaker=o.CircuitBreaker())


def test_the_overhead_phase_ignores_circuits_the_fault_phase_left_open(
    soak: ModuleType, multi: o.MultiProvider
) -> None:
    open_every_circuit(multi, multi.circuit_breaker)
    with pytest.raises(o.CircuitOpenError):  # what the fault phase leaves behind at 50%
        multi.chat("What is 2+2?")
    times = soak.overhead(multi, 4, random.Random(1))
    assert len(times.direct) == len(times.layer) == len(times.inside) == 4
    assert not times.refused
    assert all(t > 0 for t in times.direct + times.layer)


def test_calls_the_layer_refuses_are_counted_not_timed(
    soak: ModuleType, multi: o.MultiProvider
) -> None:
    breaker = o.CircuitBreaker()
    open_every_circuit(multi, breaker)
    times = soak.overhead(multi, 3, random.Random(1), breaker=breaker)
    assert times.refused == {"CircuitOpenError": 3}
    assert times.direct == times.layer == times.inside == []
