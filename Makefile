# Mailmoat: `make test` and `make demo` work on a fresh machine; they build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED ?= ../shared
CORPUS ?= $(SHARED)/corpus/spamassassin
MODEL ?= data/model.npz

.PHONY: venv test lint typecheck browser pytest bench demo clean

venv: $(STAMP)

# The compiled scans are built by the editable install: a changed .pyx reinstalls.
$(STAMP): pyproject.toml setup.py $(wildcard filters/*.pyx)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

# The browser tests drive Debian's Chromium; scripts/chromium.sh installs it when missing.
browser:
	bash scripts/chromium.sh >/dev/null || echo "no Chromium: the browser tests will be skipped"

pytest: venv browser
	$(BIN)/pytest

test: lint typecheck pytest

bench: venv
	bash bench/run.sh

demo: venv
	$(BIN)/mailmoat demo

clean:
	rm -rf $(VENV) data .mypy_cache .pytest_cache .ruff_cache
