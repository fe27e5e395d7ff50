#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests of the PostgreSQL job store.
#
#   source .ci/postgres.sh            # from .ci/run: start it, export MOSAIC_WATCH_TEST_PG,
#                                     # stop and remove it when the calling shell exits
#   bash .ci/postgres.sh CMD [ARG...] # run one command against it, then stop and remove it
#                                     # e.g. bash .ci/postgres.sh go test -race ./store/
#
# Installs Debian's postgresql if no server binaries are found (apt-get; needs root). The
# cluster lives in a temporary folder, listens only on a unix socket inside that folder
# (no TCP port, so nothing on the machine can collide with it or reach it), trusts local
# connections, and is removed at the end. PostgreSQL refuses to run as root: as root it runs
# as the `postgres` user that Debian's package creates.

_mw_pg_fail() {
    echo "postgres.sh: $*" >&2
    return 1
}

# _mw_pg_bindir prints the newest installed server's bin folder (Debian installs each major
# version under /usr/lib/postgresql/NN/bin, off PATH), or nothing.
_mw_pg_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then
        echo "$d"
    elif command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(command -v initdb)"
    fi
}

_mw_pg_start() {
    local bindir runas dir
    bindir=$(_mw_pg_bindir)
    if [ -z "$bindir" ]; then
        [ "$(id -u)" = 0 ] || { _mw_pg_fail "no PostgreSQL server found; install Debian's postgresql (needs root)"; return 1; }
        echo "postgres.sh: installing Debian's postgresql" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
        bindir=$(_mw_pg_bindir)
        [ -n "$bindir" ] || { _mw_pg_fail "postgresql installed but no initdb found"; return 1; }
    fi

    # As root, run the server as `postgres`; otherwise as whoever runs this script.
    runas=()
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || { _mw_pg_fail "running as root but there is no 'postgres' user to run the server"; return 1; }
        runas=(runuser -u postgres --)
    fi

    dir=$(mktemp -d "${TMPDIR:-/tmp}/mosaic-watch-pg.XXXXXX")
    MW_PG_DIR=$dir
    [ "${#runas[@]}" = 0 ] || chown postgres: "$dir"
    MW_PG_RUNAS=("${runas[@]}")
    MW_PG_CTL=$bindir/pg_ctl

    # --no-sync: a throwaway cluster need not survive a power loss.
    "${runas[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync \
        -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; _mw_pg_fail "initdb failed"; return 1; }
    # Unix socket only, in the private folder. Tests run in parallel, each with its own pools.
    "${runas[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c port=5432 -c max_connections=300" \
        start >/dev/null ||
        { cat "$dir/server.log" >&2; _mw_pg_fail "the server did not start"; return 1; }
    "${runas[@]}" "$bindir/psql" -X -q -h "$dir" -U postgres -d postgres \
        -c 'CREATE DATABASE mosaic_watch_test' >/dev/null ||
        { _mw_pg_fail "could not create the test database"; return 1; }

    export MOSAIC_WATCH_TEST_PG="postgres://postgres@/mosaic_watch_test?host=$dir&port=5432&sslmode=disable"
    echo "postgres.sh: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') at $dir (MOSAIC_WATCH_TEST_PG)" >&2
}

# _mw_pg_stop stops the cluster at once and removes its folder; safe to call twice.
_mw_pg_stop() {
    [ -n "${MW_PG_DIR:-}" ] || return 0
    "${MW_PG_RUNAS[@]}" "$MW_PG_CTL" -D "$MW_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$MW_PG_DIR"
    MW_PG_DIR=
    unset MOSAIC_WATCH_TEST_PG
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    # Sourced: stop the cluster when the calling shell exits, keeping its own EXIT trap.
    _mw_pg_prev_trap=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")
    trap "_mw_pg_stop; ${_mw_pg_prev_trap:-:}" EXIT
    _mw_pg_start || { _mw_pg_stop; return 1; }
else
    set -euo pipefail
    [ "$#" -gt 0 ] || { echo "usage: bash $0 CMD [ARG...]   (or: source $0)" >&2; exit 2; }
    trap _mw_pg_stop EXIT
    _mw_pg_start
    "$@"
fi
