"""CPU per call of a provider adapter against another version of its module, side by side.

    .venv/bin/python bench/adapter_ab.py --before /tmp/old/src/orkestra/providers/anthropic.py
    .venv/bin/python bench/adapter_ab.py --before FILE --provider openai --stream

``--before`` is the adapter's module file from another tree (say ``git archive <commit> src``
unpacked in /tmp); it is loaded next to this checkout's own module, so the rest of orkestra must
be the same. Both adapters call the fake server, which runs in its own process, so the CPU
counted (``time.process_time``) is the client's only. They take turns, ``--calls`` calls each a
round, for ``--rounds`` rounds; prints each one's median and range of CPU ms per call and the
median of the rounds' differences (the machine's noise hits both alike within a round).
No network beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

KEY = "sk-bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the fake server did not start")


def _module(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("before_adapter", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["before_adapter"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", type=Path, required=True, help="the other adapter module file")
    ap.add_argument("--provider", choices=["anthropic", "openai"], default="anthropic")
    ap.add_argument("--stream", action="store_true", help="stream() instead of complete()")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--calls", type=int, default=200)
    args = ap.parse_args()

    from orkestra.catalog import default_catalog
    from orkestra.providers.base import ChatRequest, ClientSettings, Message

    port = _free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "orkestra.testing", "--port", str(port), "--api-key", KEY],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(port)
        base_url = f"http://127.0.0.1:{port}" + ("/v1" if args.provider == "openai" else "")
        settings = ClientSettings(KEY, base_url)
        after = importlib.import_module(f"orkestra.providers.{args.provider}")
        before = _module(args.before)
        adapter_class = "AnthropicAdapter" if args.provider == "anthropic" else "OpenAIAdapter"
        model = default_catalog().tier_model(args.provider, "budget")
        request = ChatRequest(model, (Message("user", "Hello there"),), 16, None)
        adapters = {
            "before": getattr(before, adapter_class)(settings),
            "after": getattr(after, adapter_class)(settings),
        }
        calls: dict[str, Callable[[], object]] = {
            name: (lambda a=a: list(a.stream(request)))
            if args.stream
            else (lambda a=a: a.complete(request))
            for name, a in adapters.items()
        }
        for call in calls.values():
            for _ in range(min(100, args.calls)):
                call()
        ms: dict[str, list[float]] = {name: [] for name in calls}
        for round_ in range(args.rounds):
            for name in sorted(calls, reverse=bool(round_ % 2)):
                start = time.process_time()
                for _ in range(args.calls):
                    calls[name]()
                ms[name].append((time.process_time() - start) / args.calls * 1000)
        what = "stream()" if args.stream else "complete()"
        for name, values in ms.items():
            print(
                f"{args.provider} {what} {name}: median {statistics.median(values):.3f} CPU ms "
                f"per call (range {min(values):.3f}-{max(values):.3f})"
            )
        saved = statistics.median(b - a for b, a in zip(ms["before"], ms["after"], strict=True))
        print(f"median of the rounds' differences (before - after): {saved:.3f} ms")
        for adapter in adapters.values():
            adapter.close()
    finally:
        fake.terminate()
        fake.wait()


if __name__ == "__main__":
    main()
