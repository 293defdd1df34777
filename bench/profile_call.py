"""Where one library call's time goes: ``Provider("openai").chat()`` against the fake server
(``--provider anthropic``: ``Provider("anthropic")``), or (``--route``) one routing decision,
``Provider.route()``, over bench/routing.py's prompts.

    .venv/bin/python bench/profile_call.py [--calls 300] [--top 45] [--provider anthropic]
    .venv/bin/python bench/profile_call.py --route [--data-dir ../shared/data]

Prints the CPU time per call (this process: the fake server's thread included), then the
cProfile of the same number of calls, by cumulative time (its first line counts the Python
function calls). No network beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The model each provider's chat() asks the fake for.
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}


def measure(call: Callable[[], object], calls: int, top: int, what: str) -> None:
    for _ in range(min(30, calls)):
        call()
    start = time.process_time()
    for _ in range(calls):
        call()
    print(f"CPU ms per {what}: {(time.process_time() - start) / calls * 1000:.3f}")
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(calls):
        call()
    profile.disable()
    pstats.Stats(profile).sort_stats("cumulative").print_stats(top)


def profile_route(provider: Any, args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from routing import DATA, prompts

    items = prompts(args.calls, args.data_dir or DATA)
    turn = iter(range(10**9))
    measure(lambda: provider.route(items[next(turn) % len(items)]), len(items), args.top, "route()")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--top", type=int, default=45)
    ap.add_argument("--route", action="store_true", help="profile route() instead of chat()")
    ap.add_argument("--provider", choices=sorted(MODELS), default="openai", help="for chat()")
    ap.add_argument("--data-dir", type=Path, default=None, help="the shared outcome data")
    args = ap.parse_args()
    os.environ.setdefault("ORKESTRA_HOME", tempfile.mkdtemp(prefix="orkestra-profile-"))
    warnings.simplefilter("ignore")  # retirement notices are not what this measures

    import orkestra as o
    from orkestra.testing import FakeProviderServer

    if args.route:
        profile_route(o.Provider("openai", api_key="sk-profile"), args)
        return

    with FakeProviderServer(any_key=True) as fake:
        base_url = getattr(fake, f"{args.provider}_base_url")
        p = o.Provider(args.provider, api_key="sk-test", base_url=base_url)

        def call() -> None:
            p.chat("Hello there", model=MODELS[args.provider], max_tokens=16)

        measure(call, args.calls, args.top, "chat (the fake server's thread included)")
        p.close()


if __name__ == "__main__":
    main()
