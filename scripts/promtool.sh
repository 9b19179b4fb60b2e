#!/usr/bin/env bash
# Find promtool, installing Debian's `prometheus` package when missing, so tests can lint /metrics.
# Prints the path of promtool on stdout; any progress or error goes to stderr.
# CI machines start empty, so the project's test run calls this instead of assuming promtool.
set -euo pipefail

find_promtool() {
    if [[ -n "${PROMTOOL:-}" && -x "${PROMTOOL}" ]]; then
        printf '%s\n' "${PROMTOOL}"
    elif command -v promtool >/dev/null 2>&1; then
        command -v promtool
    elif [[ -x /usr/bin/promtool ]]; then
        # Debian installs it here; a minimal PATH may not include /usr/bin.
        printf '%s\n' /usr/bin/promtool
    else
        return 1
    fi
}

if find_promtool; then
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    echo "promtool.sh: promtool not found and not running as root;" \
        "install it with: sudo apt-get install prometheus (or set PROMTOOL=/path/to/promtool)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "promtool.sh: promtool not found and apt-get is unavailable;" \
        "install Prometheus' promtool by hand or set PROMTOOL=/path/to/promtool" >&2
    exit 1
fi

echo "promtool.sh: installing Debian package 'prometheus' for promtool" >&2
# Only the promtool binary is wanted; where policy-rc.d forbids service starts (containers,
# CI) the package's Prometheus server is installed but not started.
if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus; } >&2
then
    echo "promtool.sh: apt-get could not install 'prometheus'; see the output above" >&2
    exit 1
fi

if ! find_promtool; then
    echo "promtool.sh: package 'prometheus' installed but promtool is still missing" >&2
    exit 1
fi
