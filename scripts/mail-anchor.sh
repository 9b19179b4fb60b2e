#!/usr/bin/env bash
# Find the anchor's mail servers for the end-to-end bench (Debian's postfix and rspamd),
# installing their packages when missing. Prints "postfix=DIR" and "rspamd=PATH" on stdout;
# any progress or error goes to stderr. The bench runs its own instances on loopback ports
# with their own config and queue folders, so the packaged services are never configured.
set -euo pipefail

have() { [[ -x /usr/sbin/postfix && -x /usr/sbin/postconf && -x /usr/bin/rspamd ]]; }

if ! have; then
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "mail-anchor.sh: postfix or rspamd not found and not running as root;" \
            "install them with: sudo apt-get install postfix rspamd" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "mail-anchor.sh: postfix or rspamd not found and apt-get is unavailable" >&2
        exit 1
    fi
    echo "mail-anchor.sh: installing Debian packages 'postfix' and 'rspamd'" >&2
    # "No configuration": postfix's package sets up no mail server on port 25. Where
    # policy-rc.d forbids service starts (containers, CI) rspamd's daemon is not started.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            postfix rspamd; } >&2
    then
        echo "mail-anchor.sh: apt-get could not install postfix and rspamd; see above" >&2
        exit 1
    fi
    if ! have; then
        echo "mail-anchor.sh: packages installed but postfix or rspamd is still missing" >&2
        exit 1
    fi
fi
printf 'postfix=%s\n' "$(/usr/sbin/postconf -d -h daemon_directory)"
printf 'rspamd=%s\n' /usr/bin/rspamd
