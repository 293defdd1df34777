#!/usr/bin/env bash
# Make a headless Chromium available to the dashboard's browser tests: tests/dashboard/test_browser.py
# drives it with Playwright's Python package (executable_path=/usr/bin/chromium).
#
# Installs Debian's `chromium` package when /usr/bin/chromium is missing. Playwright's own browser
# download (`playwright install`) is never used. Needs root and apt; otherwise it says why and
# leaves it to the tests to skip, with a reason (ORKESTRA_REQUIRE_BROWSER=1 makes that a failure).
set -euo pipefail

chromium="${ORKESTRA_CHROMIUM:-/usr/bin/chromium}"

if [ -x "$chromium" ]; then
    echo "ci_browser: $chromium present"
elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ci_browser: installing chromium with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
    [ -x "$chromium" ] || { echo "ci_browser: chromium installed but $chromium not found" >&2; exit 1; }
else
    echo "ci_browser: no $chromium, and cannot install it (needs root and apt-get);" \
        "the dashboard's browser tests will be skipped" >&2
    exit 0
fi

# Debian's /usr/bin/chromium is a shell wrapper; ask the binary itself for its version.
echo "ci_browser: ready ($("$chromium" --version 2>/dev/null | grep -m1 -i chromium || echo 'version unknown'))"
