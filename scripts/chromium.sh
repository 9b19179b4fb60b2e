#!/usr/bin/env bash
# Find headless Chromium, installing Debian's `chromium` package when missing, for browser tests.
# Prints the path of the browser on stdout; any progress or error goes to stderr.
# Playwright drives it through executable_path: Playwright's own browser download is not used.
set -euo pipefail

find_chromium() {
    if [[ -n "${CHROMIUM:-}" && -x "${CHROMIUM}" ]]; then
        printf '%s\n' "${CHROMIUM}"
    elif [[ -x /usr/bin/chromium ]]; then
        printf '%s\n' /usr/bin/chromium
    elif command -v chromium >/dev/null 2>&1; then
        command -v chromium
    else
        return 1
    fi
}

if find_chromium; then
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    echo "chromium.sh: chromium not found and not running as root;" \
        "install it with: sudo apt-get install chromium (or set CHROMIUM=/path/to/chromium)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium.sh: chromium not found and apt-get is unavailable;" \
        "install Chromium by hand or set CHROMIUM=/path/to/chromium" >&2
    exit 1
fi

echo "chromium.sh: installing Debian package 'chromium' for the browser tests" >&2
if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        chromium fonts-dejavu-core; } >&2
then
    echo "chromium.sh: apt-get could not install 'chromium'; see the output above" >&2
    exit 1
fi

if ! find_chromium; then
    echo "chromium.sh: package 'chromium' installed but the browser is still missing" >&2
    exit 1
fi
