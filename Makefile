# Every target creates or refreshes .venv first; a re-run with unchanged requirements installs nothing.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
QUIET_PIP := grep -v 'is ignored: it is neither a file nor a directory' || true

.PHONY: venv demo ui test test-cluster test-fast lint bench ablation clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing pinned requirements into $(VENV) (first run: about 2 minutes, 6.7 GB)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt 2>&1 | $(QUIET_PIP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e . 2>&1 | $(QUIET_PIP)
	@touch $@

demo: $(STAMP)
	$(BIN)/depthhints demo --out outputs/demo

ui: $(STAMP)
	$(BIN)/depthhints ui

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest

test-cluster: $(STAMP)  # ray up/submit/down of platform/cluster.local.yaml on SSH hosts made here (root)
	@test -x /usr/sbin/sshd && command -v rsync >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq openssh-server rsync >/dev/null; }
	$(BIN)/python -m pytest --cluster -s tests/cluster

test-fast: lint  # the inner loop: every test not marked slow (~2 min on 2 cores)
	$(BIN)/python -m pytest -m "not slow"

bench: $(STAMP)
	$(BIN)/python -m bench

ablation: $(STAMP)  # the hint ablation of docs/results.md (~100 min on 2 cores), and that page
	$(BIN)/python experiments/ablation_synthetic.py --publish docs/results.md

clean:
	rm -rf outputs .pytest_cache .ruff_cache
