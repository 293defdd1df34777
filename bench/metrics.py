"""What /metrics costs each request: recording one answered chat call, in microseconds.

    .venv/bin/python bench/metrics.py

Times what the proxy does per chat request when metrics are on (the middleware's request count
and latency, then the answer's tokens, cost, savings, routing tier, attempt and latency
series), against the same loop doing nothing, in one process; and one scrape (the exposition
text) once a few hundred series exist. Single-process mode (no --workers).
"""

from __future__ import annotations

import statistics
import time

from orkestra._types import Attempt, Response, RoutingDecision, Usage
from orkestra.server.metrics import ProxyMetrics, RequestLabels

ROUNDS, CALLS = 7, 20_000


def response(i: int) -> Response:
    model = ("gpt-4o-mini", "gpt-4.1-mini", "o3")[i % 3]
    usage = Usage(input_tokens=120, output_tokens=30)
    routing = RoutingDecision("openai", model, "budget", {"budget": 0.8}, 0.88, "cheapest", 0.9)
    attempt = Attempt("openai", model, "budget", usage=usage, cost=2e-5, latency_ms=3.0)
    return Response(
        "Tokyo.", "openai", model, usage, 1e-5, 1e-5, "o3", 1e-4, routing, attempts=(attempt,)
    )


def per_call_us(metrics: ProxyMetrics | None, answers: list[Response]) -> float:
    labels = RequestLabels("gpt-4o-mini", "budget", "0123456789ab")
    started = time.perf_counter()
    for i in range(CALLS):
        answer = answers[i % len(answers)]
        if metrics is not None:
            metrics.answered(
                answer,
                key_id="0123456789ab",
                routed_to="orkestra/openai",
                route="/v1/chat/completions",
                seconds=0.004,
            )
            metrics.request("/v1/chat/completions", 200, labels, 0.004)
    return (time.perf_counter() - started) / CALLS * 1e6


def main() -> None:
    answers = [response(i) for i in range(30)]
    metrics = ProxyMetrics()
    per_call_us(metrics, answers)  # create every labelled child first
    baseline = statistics.median(per_call_us(None, answers) for _ in range(ROUNDS))
    recording = statistics.median(per_call_us(metrics, answers) for _ in range(ROUNDS))
    scrapes = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        text = metrics.exposition()
        scrapes.append((time.perf_counter() - started) * 1000)
    series = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
    print(
        f"recording one chat request: {recording - baseline:.1f} µs (median of {ROUNDS} x {CALLS})"
    )
    print(f"one scrape of {series} series: {statistics.median(scrapes):.2f} ms")


if __name__ == "__main__":
    main()
