# Shipgate's developer commands. Each target installs what it needs.
#   make demo   - replay the workflow end to end on the local AWS emulator
#   make test   - every test: unit, emulator integration, end to end
#   make local  - the emulator and the six functions, running, to invoke any event by hand
#   make bench  - benchmarks, side by side with a Python baseline (bench/README.md)
#   make lint   - rustfmt and clippy; ruff and mypy over the emulator, as CI runs them
#   make iam-mutants - remove each role statement in turn: every removal must fail a test
#   make mutants - mutation testing of the decision modules (cargo-mutants)

SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python3
export SHIPGATE_PYTHON := $(abspath $(PY))
# cargo-lambda lives in the virtual environment.
export PATH := $(abspath $(VENV))/bin:$(PATH)

INFRA_VENV := .venv-infra

.PHONY: demo local bench storm test lint lint-tools lint-infra setup tools infra-tools iam-mutants mutants

# The Python side: moto server for the local AWS emulator.
setup: $(VENV)/.installed
$(VENV)/.installed: tests/emulator/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r tests/emulator/requirements.txt
	touch $@

# The cargo side: nextest runs each test in its own process.
tools:
	@cargo nextest --version >/dev/null 2>&1 || cargo install cargo-nextest --locked

# The main job: the whole workflow replayed on this machine (local AWS emulator,
# cargo-lambda's runtime emulator, the real function binaries).
demo: setup
	cargo run --locked -p shipgate-tests --bin shipgate-replay

# The local AWS emulator and the six functions, left running until Ctrl-C:
# prints one `cargo lambda invoke` line per function to try any event by hand.
local: setup
	cargo run --locked -p shipgate-tests --bin shipgate-local

# Cold start, memory, warm latency and throughput against a Python + boto3
# baseline, zip sizes, and the policy-engine figures: writes bench/README.md.
FUNCTION_BINS := $(foreach f,$(notdir $(wildcard functions/*)),--bin $(f))
bench: setup
	$(PY) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	mkdir -p target
	cargo bench --quiet -p shipgate-core --bench engine | sed -n '/^| what/,$$p' > target/bench-engine.md
	cargo lambda build --release --compiler cargo --output-format zip $(FUNCTION_BINS)
	cargo run --quiet --locked -p shipgate-tests --bin shipgate-bench
	cargo run --quiet --locked -p shipgate-tests --bin shipgate-storm

# One CVE flips 200 running images of 5 owners (SHIPGATE_STORM=5x40): messages,
# invocations, lost compare-and-swap races, wall time; into bench/README.md.
storm: setup
	cargo run --locked -p shipgate-tests --bin shipgate-storm

test: setup tools
	cargo nextest run --workspace --locked $(if $(CI),--profile ci,)

# Removes each statement of each function's role in turn and runs the tests
# against it: every removal must fail a test. Slow (a run per statement); not in CI.
iam-mutants: setup tools
	$(PY) tests/emulator/iam_mutants.py

# Mutation testing of the decision modules listed in .cargo/mutants.toml
# (scan, rules, manifest, platforms, user, exposure, gate, verdict, webhook):
# every mutant that could change a verdict, a gate decision, which image of an
# index runs, which stored verdict wins or a signature check must be killed
# by a test. By default with the core's and the CLI's tests
# (about half an hour on two cores); MUTANTS_TESTS=--test-workspace=true adds
# every integration test through the emulator (hours). Not in CI.
MUTANTS_TESTS ?= --test-package shipgate-core --test-package shipgate-cli
mutants: setup tools
	@cargo mutants --version >/dev/null 2>&1 || cargo install cargo-mutants --locked
	cargo mutants $(MUTANTS_TESTS)

# ruff and mypy share the emulator's environment, so mypy reads moto's types.
lint-tools: $(VENV)/.lint-installed
$(VENV)/.lint-installed: $(VENV)/.installed tests/emulator/requirements-lint.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r tests/emulator/requirements-lint.txt
	touch $@

lint: lint-tools
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cd tests/emulator && $(abspath $(VENV))/bin/ruff check . ../../infra/lint_iam.py
	cd tests/emulator && $(abspath $(VENV))/bin/mypy .

# cfn-lint and checkov on every template; a skipped checkov check carries its
# reason in the template's Metadata.
infra-tools: $(INFRA_VENV)/.installed
$(INFRA_VENV)/.installed: infra/requirements.txt
	python3 -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	touch $@

# SAM CLI pins its own cfn-lint, so it gets a virtual environment of its own.
SAM_VENV := .venv-sam
$(SAM_VENV)/.installed: infra/requirements-sam.txt
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-sam.txt
	touch $@

lint-infra: infra-tools $(SAM_VENV)/.installed
	$(INFRA_VENV)/bin/cfn-lint infra/template.yaml infra/pipeline/template.yaml
	$(INFRA_VENV)/bin/python infra/lint_iam.py infra/template.yaml infra/pipeline/template.yaml
	$(INFRA_VENV)/bin/checkov -d infra --framework cloudformation --quiet --compact --skip-download
	for t in infra/template.yaml infra/pipeline/template.yaml; do SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint -t $$t --region us-east-1 || exit 1; done
