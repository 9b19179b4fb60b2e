#!/usr/bin/env bash
# `make demo`: train a model (once) and scan the example messages, printing every verdict.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
CORPUS=${CORPUS:-../shared/corpus/spamassassin}
MODEL=${MODEL:-data/model.npz}

if [ ! -f "$MODEL" ]; then
  if [ -d "$CORPUS" ]; then
    echo "== training the token model on $CORPUS"
    "$BIN/mailmoat" train --corpus "$CORPUS" --out "$MODEL" --seed 1
  else
    echo "== $CORPUS not found: training a tiny model on the example messages only"
    "$BIN/mailmoat" train --corpus examples/mail --labels labels.tsv --out "$MODEL" --seed 1
  fi
fi
echo "== scanning examples/mail with examples/policy.toml"
"$BIN/mailmoat" scan --policy examples/policy.toml --model "$MODEL" examples/mail/*.eml
