#!/usr/bin/env bash
# `make bench`: every benchmark; results land as JSON in bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
# Some benches reuse the tests' real servers (tests.postgres, tests.dnsserver): the root on the path.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
CORPUS=${CORPUS:-../shared/corpus/spamassassin}
mkdir -p bench/results
"$PY" bench/sla.py --out bench/results/sla.json   # synthetic events: needs no corpus
"$PY" bench/held_mail.py
"$PY" bench/simulate.py --out bench/results/simulate.json   # generated corpus: needs none
"$PY" bench/usage.py                           # registered vs scanned users
if [ ! -d "$CORPUS" ]; then
  echo "bench: corpus $CORPUS not found; the remaining benchmarks need the shared corpus" >&2
  exit 1
fi
"$PY" bench/throughput.py --corpus "$CORPUS"
"$PY" bench/accuracy.py --corpus "$CORPUS" --out bench/results/accuracy.json
"$PY" bench/training_memory.py --corpus "$CORPUS"   # 100,000 messages streamed: peak RSS
# Also the anchor: Debian's Postfix with and without rspamd's milter (scripts/mail-anchor.sh
# installs them when missing; needs root) against Mailmoat, one node on SQLite.
"$PY" bench/e2e.py --corpus "$CORPUS" --out bench/results/e2e.json
"$PY" bench/e2e_nodes.py --corpus "$CORPUS" --out bench/results/e2e_nodes.json
"$PY" bench/replay.py --corpus "$CORPUS" --out bench/results/replay.json
# Chaos: 100,000 messages, 60 SIGKILLs, a full disk (tmpfs; needs root) and a downstream outage.
"$PY" bench/chaos.py --corpus "$CORPUS" --out bench/results/chaos.json
