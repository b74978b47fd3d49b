# Shipgate's developer commands. Each target installs what it needs.
#   make test   - every test: unit, emulator integration, end to end
#   make lint   - rustfmt and clippy, as CI runs them

SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python3
export SHIPGATE_PYTHON := $(abspath $(PY))

INFRA_VENV := .venv-infra

.PHONY: test lint lint-infra setup tools infra-tools

# The Python side: moto server for the local AWS emulator.
setup: $(VENV)/.installed
$(VENV)/.installed: tests/emulator/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r tests/emulator/requirements.txt
	touch $@

# The cargo side: nextest runs each test in its own process.
tools:
	@cargo nextest --version >/dev/null 2>&1 || cargo install cargo-nextest --locked

test: setup tools
	cargo nextest run --workspace --locked $(if $(CI),--profile ci,)

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

# cfn-lint and checkov on every template; a skipped checkov check carries its
# reason in the template's Metadata.
infra-tools: $(INFRA_VENV)/.installed
$(INFRA_VENV)/.installed: infra/requirements.txt
	python3 -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	touch $@

lint-infra: infra-tools
	$(INFRA_VENV)/bin/cfn-lint infra/template.yaml infra/pipeline/template.yaml
	$(INFRA_VENV)/bin/checkov -d infra --framework cloudformation --quiet --compact --skip-download
