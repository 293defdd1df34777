"""What a cascade costs in time over a routed call, in the library, from one run.

    .venv/bin/python bench/cascade.py            # 400 calls per path
    .venv/bin/python bench/cascade.py --calls 100
    PYTHONPATH=<tree>/src .venv/bin/python bench/cascade.py --routed-only   # any tree
    .venv/bin/python bench/cascade.py --proxy    # orkestra serve: routed vs cascade

``--proxy`` runs ``orkestra serve`` (one worker, a client key, the usage log on SQLite, as
``bench/proxy.py`` does) in front of the fake and sends ``orkestra/openai`` and
``orkestra/cascade`` the same requests, one after the other, alternating request by request (a
shared machine's load then drifts over both alike): p50 / p90 / p99 of each.

``--routed-only`` measures the routed path alone (it runs on code without cascades too, to
compare a routed call before and after), and counts the Python function calls of one routed
``chat`` under cProfile (deterministic, unlike the clock on a shared machine).

The fake provider server runs in its own process (``python -m orkestra.testing``); one
``Provider("openai")`` in this process calls it through the real ``openai`` SDK, the usage log
off. Interleaved, call by call, on the same prompts (``max_tokens`` 64):

- ``routed``: ``provider.chat(prompt)`` (mode ``"route"``: the router picks one model);
- ``cascade, kept``: ``cascade=True`` on prompts whose cheap answer passes its check (one call:
  gpt-4o-mini, then ``verifiers.heuristic()`` on its answer);
- ``cascade, climbed``: ``cascade=True`` on a maths prompt the fake answers without a result,
  so every check fails and the cascade climbs to the top (three calls, two checks);

and, alone, the heuristic verifier's ``verify`` on those answers. Prints p50 / p99 per path and
the cascade's added time over ``routed`` (the fake answers in well under a millisecond, so
these are orkestra's own costs, plus the SDK's and the loopback's).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ[var] = "1"
os.environ["ORKESTRA_USAGE_LOG"] = "off"

KEPT = [
    "What is the capital of Japan?",
    "Write a haiku about autumn rain",
    "Explain how a hash map handles collisions",
    "Translate 'good morning, how are you?' into Spanish and German",
]
CLIMBED = "Tom has 12 apples and buys 3 more. How many apples does he have now?"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_any(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the fake provider server exited")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def ms(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return 1000.0 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=400, help="calls per path")
    parser.add_argument("--routed-only", action="store_true", help="the routed path alone")
    parser.add_argument("--proxy", action="store_true", help="through orkestra serve")
    args = parser.parse_args()
    if args.proxy:
        return through_proxy(args.calls)

    import orkestra as o

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "fake.log"
        with log.open("wb") as out:
            fake = subprocess.Popen(
                [sys.executable, "-m", "orkestra.testing", "--port", str(port), "--any-key"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        try:
            wait_for_any(f"http://127.0.0.1:{port}/v1/models", fake)
            provider = o.Provider(
                "openai", "sk-bench", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0
            )
            if args.routed_only:
                return routed_only(provider, args.calls)
            from orkestra import verifiers

            check = verifiers.heuristic()
            answers: list[tuple[verifiers.Request, verifiers.Answer]] = []
            for prompt in [*KEPT, CLIMBED]:  # warm up: SDK client, router, verifier
                provider.chat(prompt, max_tokens=64)
                response = provider.chat(prompt, max_tokens=64, cascade=True)
                for step in response.cascade.steps if response.cascade else ():
                    answer = verifiers.Answer(step.text, usage=step.usage, model=step.model)
                    answers.append((verifiers.Request.of(prompt), answer))
            paths: dict[str, list[float]] = {
                "routed": [],
                "cascade, kept (1 call)": [],
                "cascade, climbed (3 calls)": [],
            }
            for i in range(args.calls):
                prompt = KEPT[i % len(KEPT)]
                paths["routed"].append(timed(lambda p=prompt: provider.chat(p, max_tokens=64)))
                paths["cascade, kept (1 call)"].append(
                    timed(lambda p=prompt: provider.chat(p, max_tokens=64, cascade=True))
                )
                if i % 4 == 0:
                    paths["cascade, climbed (3 calls)"].append(
                        timed(lambda: provider.chat(CLIMBED, max_tokens=64, cascade=True))
                    )
            verify = [
                timed(lambda pair=pair: check.verify(*pair))  # type: ignore[misc]
                for _ in range(max(1, args.calls // len(answers)))
                for pair in answers
            ]
            provider.close()
        finally:
            fake.terminate()
            fake.wait(timeout=20)

    routed = paths["routed"]
    print(
        f"\n{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {args.calls} calls per path\n"
    )
    print("| path | p50 ms | p99 ms | added p50 ms | added p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for name, samples in paths.items():
        added = (
            ("—", "—")
            if name == "routed"
            else (
                f"{ms(samples, 0.5) - ms(routed, 0.5):.2f}",
                f"{ms(samples, 0.99) - ms(routed, 0.99):.2f}",
            )
        )
        print(
            f"| {name} | {ms(samples, 0.5):.2f} | {ms(samples, 0.99):.2f} | "
            f"{added[0]} | {added[1]} |"
        )
    print(f"| heuristic verify() alone | {ms(verify, 0.5):.3f} | {ms(verify, 0.99):.3f} | | |")
    print(f"\nmean routed {1000 * statistics.mean(routed):.2f} ms")
    return 0


def through_proxy(calls: int) -> int:
    """orkestra/openai and orkestra/cascade through a real ``orkestra serve``, interleaved."""
    import http.client
    import json

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import proxy as bench  # bench/proxy.py: its processes, config and prompts

    names = ("orkestra/openai", "orkestra/cascade")
    samples: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp, env = Path(tmp_dir), bench.base_env()
        up, port = bench.free_port(), bench.free_port()
        fake_cmd = [sys.executable, "-m", "orkestra.testing", "--port", str(up)]
        with bench.process(fake_cmd, env, tmp / "fake.log") as fake:
            bench.wait_for_any(f"http://127.0.0.1:{up}/v1/models", fake, tmp / "fake.log")
            config = bench.orkestra_config(f"http://127.0.0.1:{up}", tmp)
            ork_env = {**env, "ORKESTRA_HOME": str(tmp), "BENCH_UPSTREAM_KEY": bench.UPSTREAM_KEY}
            command = [sys.executable, "-m", "orkestra.server", "--config", str(config)]
            with bench.process([*command, "--port", str(port)], ork_env, tmp / "ork.log") as ork:
                bench.wait_for(f"http://127.0.0.1:{port}/healthz", ork, tmp / "ork.log")
                conn = http.client.HTTPConnection("127.0.0.1", port)
                headers = {
                    "Authorization": f"Bearer {bench.CLIENT_KEY}",
                    "Content-Type": "application/json",
                }

                def ask(model: str, prompt: str) -> None:
                    message = {"role": "user", "content": prompt}
                    body = {"model": model, "max_tokens": 64, "messages": [message]}
                    conn.request("POST", "/v1/chat/completions", json.dumps(body), headers)
                    answer = conn.getresponse()
                    answer.read()
                    if answer.status != 200:
                        raise RuntimeError(f"{model}: HTTP {answer.status}")

                for i in range(bench.WARMUP + calls):
                    prompt = bench.PROMPTS[i % len(bench.PROMPTS)]
                    for name in names:
                        took = timed(lambda n=name, p=prompt: ask(n, p))
                        if i >= bench.WARMUP:
                            samples[name].append(took)
                conn.close()
    routed = samples["orkestra/openai"]
    print(f"\norkestra serve, {calls} requests each, alternating, concurrency 1")
    print("| model | p50 ms | p90 ms | p99 ms | added p50 ms |")
    print("|---|---:|---:|---:|---:|")
    for name, values in samples.items():
        added = "—" if name == names[0] else f"{ms(values, 0.5) - ms(routed, 0.5):.2f}"
        print(
            f"| {name} | {ms(values, 0.5):.2f} | {ms(values, 0.9):.2f} | "
            f"{ms(values, 0.99):.2f} | {added} |"
        )
    return 0


def routed_only(provider: object, calls: int) -> int:
    import cProfile
    import pstats

    chat = provider.chat  # type: ignore[attr-defined]
    for prompt in KEPT:  # warm up
        chat(prompt, max_tokens=64)
    prompts = [KEPT[i % len(KEPT)] for i in range(calls)]
    samples = [timed(lambda p=p: chat(p, max_tokens=64)) for p in prompts]
    profile = cProfile.Profile()
    profile.enable()
    for prompt in KEPT:
        chat(prompt, max_tokens=64)
    profile.disable()
    counted = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
    import orkestra

    print(f"\n{orkestra.__file__}: routed chat, {calls} calls")
    print(f"p50 {ms(samples, 0.5):.2f} ms  p99 {ms(samples, 0.99):.2f} ms")
    print(f"Python function calls per routed chat (cProfile): {counted / len(KEPT):.0f}")
    provider.close()  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
