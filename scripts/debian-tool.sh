#!/usr/bin/env bash
# Find a tool a test needs, installing its Debian package when missing: debian-tool.sh BINARY PACKAGE.
# Prints the tool's path on stdout; any progress or error goes to stderr. An environment
# variable named like the binary in upper case (PROMTOOL, AMTOOL, ...) overrides the search.
# CI machines start empty, so the project's tests call this instead of assuming the tool.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: debian-tool.sh BINARY PACKAGE" >&2
    exit 2
fi
binary=$1
package=$2
override_name=$(printf '%s' "${binary}" | tr 'a-z-' 'A-Z_')
override=${!override_name:-}

find_tool() {
    if [[ -n "${override}" && -x "${override}" ]]; then
        printf '%s\n' "${override}"
    elif command -v "${binary}" >/dev/null 2>&1; then
        command -v "${binary}"
    elif [[ -x "/usr/bin/${binary}" ]]; then
        # Debian installs it here; a minimal PATH may not include /usr/bin.
        printf '%s\n' "/usr/bin/${binary}"
    else
        return 1
    fi
}

if find_tool; then
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    echo "debian-tool.sh: ${binary} not found and not running as root;" \
        "install it with: sudo apt-get install ${package} (or set ${override_name}=/path)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "debian-tool.sh: ${binary} not found and apt-get is unavailable;" \
        "install ${package} by hand or set ${override_name}=/path" >&2
    exit 1
fi

echo "debian-tool.sh: installing Debian package '${package}' for ${binary}" >&2
# Where policy-rc.d forbids service starts (containers, CI) the package's daemon is
# installed but not started; the tests start their own on loopback.
install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${package}" >&2
}
# Package lists may be missing or stale on a fresh machine: update once, then retry.
if ! install && ! { DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 && install; }; then
    echo "debian-tool.sh: apt-get could not install '${package}'; see the output above" >&2
    exit 1
fi

if ! find_tool; then
    echo "debian-tool.sh: package '${package}' installed but ${binary} is still missing" >&2
    exit 1
fi
