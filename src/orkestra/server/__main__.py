"""``python -m orkestra.server``: the proxy without the CLI, and client-key helpers.

python -m orkestra.server --config orkestra.toml --port 8000
python -m orkestra.server --new-key          # a new client key and the sha256 to configure
echo -n "$KEY" | python -m orkestra.server --hash-key
"""

from __future__ import annotations

import argparse
import sys

from orkestra.errors import ConfigurationError
from orkestra.server.config import hash_key, new_key
from orkestra.server.run import run_server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orkestra.server", description="orkestra's OpenAI-compatible proxy"
    )
    parser.add_argument("--config", help="a TOML or YAML config file")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8000; 0: any)")
    parser.add_argument("--workers", type=int, help="server processes sharing the port (default 1)")
    parser.add_argument(
        "--new-key", action="store_true", help="print a new client key and its sha256"
    )
    parser.add_argument(
        "--hash-key", action="store_true", help="print the sha256 of the key read from stdin"
    )
    parser.add_argument(
        "--print-config-schema",
        action="store_true",
        help="print the config file's JSON Schema (for editors) and exit",
    )
    args = parser.parse_args(argv)
    if args.print_config_schema:
        from orkestra.server.config_schema import config_schema_text

        sys.stdout.write(config_schema_text())
        return 0
    if args.new_key:
        key = new_key()
        print(f"key (give it to the client): {key}")
        print(f'config:  sha256 = "{hash_key(key)}"')
        return 0
    if args.hash_key:
        key = sys.stdin.read().strip()
        if not key:
            print("no key on stdin", file=sys.stderr)
            return 2
        print(hash_key(key))
        return 0
    try:
        run_server(args.config, args.host, args.port, workers=args.workers)
    except ConfigurationError as exc:
        print(f"orkestra serve: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
