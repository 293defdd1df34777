"""Where one library call's time goes: ``Provider("openai").chat()`` against the fake server.

    .venv/bin/python bench/profile_call.py [--calls 300] [--top 45]

Prints the CPU time per call (this process: the fake server's thread included), then the
cProfile of the same number of calls, by cumulative time. No network beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
import warnings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--top", type=int, default=45)
    args = ap.parse_args()
    os.environ.setdefault("ORKESTRA_HOME", tempfile.mkdtemp(prefix="orkestra-profile-"))
    warnings.simplefilter("ignore")  # retirement notices are not what this measures

    import orkestra as o
    from orkestra.testing import FakeProviderServer

    with FakeProviderServer(any_key=True) as fake:
        p = o.Provider("openai", api_key="sk-test", base_url=fake.openai_base_url)

        def call() -> None:
            p.chat("Hello there", model="gpt-4o-mini", max_tokens=16)

        for _ in range(30):
            call()
        start = time.process_time()
        for _ in range(args.calls):
            call()
        per_call = (time.process_time() - start) / args.calls * 1000
        print(f"CPU ms per chat (the fake server's thread included): {per_call:.3f}")
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.calls):
            call()
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)
        p.close()


if __name__ == "__main__":
    main()
