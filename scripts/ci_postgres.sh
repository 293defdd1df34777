#!/usr/bin/env bash
# Make a PostgreSQL server available to the usage-log tests (tests/usage/conftest.py starts and
# stops a throwaway one itself: initdb into a temp dir, pg_ctl on 127.0.0.1, a free port).
#
# Installs Debian's `postgresql` package when initdb/pg_ctl are missing. Needs root and apt;
# otherwise it says why and leaves it to the tests to skip their PostgreSQL half, with a reason.
set -euo pipefail

have_server_binaries() {
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null
}

if have_server_binaries; then
    echo "ci_postgres: PostgreSQL server binaries present"
elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ci_postgres: installing postgresql with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # No cluster is created or started here: the tests run their own, as the postgres user.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/orkestra-ci.conf
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    have_server_binaries || { echo "ci_postgres: postgresql installed but initdb not found" >&2; exit 1; }
else
    echo "ci_postgres: no initdb/pg_ctl, and cannot install them (needs root and apt-get);" \
        "the PostgreSQL usage-log tests will be skipped" >&2
    exit 0
fi

# As root the tests run the server as the `postgres` user (PostgreSQL refuses to run as root).
if [ "$(id -u)" -eq 0 ] && ! id -u postgres >/dev/null 2>&1; then
    echo "ci_postgres: no 'postgres' user to run the server as" >&2
    exit 1
fi
bindir="$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")")"
echo "ci_postgres: ready ($("$bindir/postgres" --version))"
