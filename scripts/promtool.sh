#!/usr/bin/env bash
# Find promtool, installing Debian's `prometheus` package when missing, so tests can lint /metrics.
# Prints the path of promtool on stdout (PROMTOOL=/path overrides); progress goes to stderr.
set -euo pipefail
exec bash "$(dirname "$0")/debian-tool.sh" promtool prometheus
