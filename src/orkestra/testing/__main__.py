"""``python -m orkestra.testing``: serve the fake providers in the foreground."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from types import FrameType

from ._server import FakeProviderServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orkestra.testing",
        description="Serve fake OpenAI, Anthropic and Gemini APIs on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    parser.add_argument("--api-key", default="test-key", help="the key every provider accepts")
    parser.add_argument(
        "--any-key",
        action="store_true",
        help="accept any non-empty key (for samples written with placeholder keys)",
    )
    args = parser.parse_args(argv)

    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    # SIGINT too, explicitly: a process started in the background by a non-interactive shell
    # (a CI script's `cmd &`) inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: Ctrl-C or `kill -INT` would not stop the server.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = FakeProviderServer(api_key=args.api_key, any_key=args.any_key, port=args.port)
    server.start()
    try:
        for name, value in server.env().items():
            print(f"export {name}={shlex.quote(value)}")
        print(f"# fake providers serving on {server.url}; Ctrl-C to stop", file=sys.stderr)
        sys.stdout.flush()
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
