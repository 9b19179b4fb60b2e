#!/usr/bin/env bash
# Find PostgreSQL's server binaries (initdb, pg_ctl), installing Debian's `postgresql` package
# when missing, so tests can start a throwaway cluster where no server runs.
# Prints the binaries' folder on stdout; any progress or error goes to stderr.
set -euo pipefail

find_bindir() {
    if [[ -n "${PG_BINDIR:-}" && -x "${PG_BINDIR}/initdb" ]]; then
        printf '%s\n' "${PG_BINDIR}"
        return 0
    fi
    local dir
    # Debian keeps each major version's server binaries off PATH; take the newest.
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x "${dir}/initdb" && -x "${dir}/pg_ctl" ]]; then
            printf '%s\n' "${dir}"
            return 0
        fi
    done
    return 1
}

if find_bindir; then
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    echo "postgres.sh: PostgreSQL not found and not running as root;" \
        "install it with: sudo apt-get install postgresql (or set PG_BINDIR=/path/to/bin)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "postgres.sh: PostgreSQL not found and apt-get is unavailable;" \
        "install its server binaries by hand or set PG_BINDIR=/path/to/bin" >&2
    exit 1
fi

echo "postgres.sh: installing Debian package 'postgresql' for initdb and pg_ctl" >&2
# Only the binaries are wanted: tests run their own cluster on a free port. Where
# policy-rc.d forbids service starts (containers, CI) the packaged server is not started.
if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql; } >&2
then
    echo "postgres.sh: apt-get could not install 'postgresql'; see the output above" >&2
    exit 1
fi

if ! find_bindir; then
    echo "postgres.sh: package 'postgresql' installed but initdb is still missing" >&2
    exit 1
fi
