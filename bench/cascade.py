"""What a cascade costs in time over a routed call, in the library, from one run.

    .venv/bin/python bench/cascade.py            # 400 calls per path
    .venv/bin/python bench/cascade.py --calls 100

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
    args = parser.parse_args()

    import orkestra as o
    from orkestra import verifiers

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


if __name__ == "__main__":
    raise SystemExit(main())
