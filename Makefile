# Two commands matter: `make run` (a working stack on loopback) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
STATE := .state
EMULATOR_PORT ?= 8831
EMULATOR_MANAGEMENT_PORT ?= 8832

PROTOS := $(shell find protos -name '*.proto')
# The generated code lives in the client distribution (clients/pyproject.toml), which the server
# depends on: protos/sectigo/ca/v1/ca.proto becomes clients/sectigo/ca/v1/ca_pb2*.py{,i}.
GENERATED := clients
PROTOC = PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m grpc_tools.protoc -Iprotos \
	--python_out=$(1) --grpc_python_out=$(1) --mypy_out=$(1) --mypy_grpc_out=$(1) $(PROTOS)

.PHONY: install system-deps lint protos protos-check docs test dist reliability run run-replicas \
	emulator compose-certs bench clean

install: $(STAMP)

# The tests call the real openssl binary, start a throwaway PostgreSQL cluster (tests/store) and
# run a replica under libfaketime (tests/replicas); install them when a bare machine lacks them.
system-deps:
	@command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl; }
	@ls /usr/lib/*/faketime/libfaketimeMT.so.1 >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq faketime; }
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq postgresql; }

# Both distributions in development mode: the client (with its command's extra) and the server.
$(STAMP): pyproject.toml clients/pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e './clients[cli]' -e '.[dev]'
	@touch $(STAMP)

# Regenerate the committed protobuf code after changing a .proto.
protos: install
	$(call PROTOC,$(GENERATED))

# Fails when the committed generated code differs from what the .proto files generate.
protos-check: install
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && $(call PROTOC,$$tmp) >/dev/null && \
	for f in $$(cd "$$tmp" && find . -type f); do \
		cmp -s "$$tmp/$$f" "$(GENERATED)/$$f" || \
			{ echo "generated code is stale: $(GENERATED)/$$f (run make protos)"; exit 1; }; \
	done && echo "generated protobuf code is current"

lint: install protos-check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# loadgroup: tests marked with one xdist_group share a worker (tests/distribution builds its
# wheel and virtual environments once per worker session).
test: lint
	$(BIN)/pytest -n 2 --dist loadgroup

# Wheels and sdists of both distributions into dist/: sectigo-ca-client (clients/) and sectigo-svc.
dist: install
	rm -rf dist
	$(BIN)/python -m build --outdir dist clients
	$(BIN)/python -m build --outdir dist .

# The reliability suite at full size (minutes to an hour), on one SQLite replica and on three
# replicas sharing a throwaway PostgreSQL database; writes docs/reliability.md from its
# figures. Sizes: RELIABILITY_REQUESTS, _TRIALS, _CONCURRENT, _OUTAGE, _WRONG_PASSWORD,
# _SKEW_CALLS, _READ_TIMEOUTS (see tests/reliability/lab.py), e.g.
# `RELIABILITY_CONCURRENT=300 make reliability`. `make test` runs it small.
RELIABILITY_RESULTS := $(STATE)/reliability.jsonl
reliability: install
	mkdir -p $(STATE) && rm -f $(RELIABILITY_RESULTS)
	RELIABILITY_SCALE=long RELIABILITY_RESULTS=$(CURDIR)/$(RELIABILITY_RESULTS) \
		$(BIN)/pytest tests/reliability -n 2 --timeout 3600; status=$$?; \
	$(BIN)/python -m tests.reliability.report $(RELIABILITY_RESULTS) > docs/reliability.md.new && \
	mv docs/reliability.md.new docs/reliability.md; exit $$status

emulator: install
	$(BIN)/sectigo-svc emulator --host 127.0.0.1 --port $(EMULATOR_PORT) \
		--management-port $(EMULATOR_MANAGEMENT_PORT) --state-dir $(STATE)/emulator --issue-delay 2

# The whole stack on loopback: development PKI, the Sectigo emulator, the service with mutual TLS.
run: install
	$(BIN)/sectigo-svc dev --state-dir $(STATE) --emulator-port $(EMULATOR_PORT) \
		--management-port $(EMULATOR_MANAGEMENT_PORT)

# Several replicas on a PostgreSQL cluster of their own (initdb once, then pg_ctl, in
# $(STATE)/fleet/postgres), the emulator and development certificates, on loopback; replica N
# (from 0) on 9443 + 10 N. Ctrl-C stops all of it, the cluster included.
REPLICAS ?= 2
run-replicas: install
	$(BIN)/sectigo-svc dev --replicas $(REPLICAS) --state-dir $(STATE)/fleet \
		--emulator-port $(EMULATOR_PORT) --management-port $(EMULATOR_MANAGEMENT_PORT)

# Development PKI for `docker compose up` (the server certificate also names the compose hosts)
# and the replicas' shared data key.
compose-certs: install $(STATE)/compose/data.key
	$(BIN)/sectigo-svc dev-certs $(STATE)/compose/pki --host localhost --host 127.0.0.1 \
		--host ::1 --host service --host replica-1 --host replica-2
	mkdir -p $(STATE)/compose/emulator $(STATE)/compose/service

# Made once and never overwritten: a new key cannot open what the old one sealed.
$(STATE)/compose/data.key:
	mkdir -p $(@D)
	umask 077 && openssl rand -base64 32 > $@.new && mv $@.new $@

# Regenerate docs/settings.md and docs/sectigo-answers.md from the code (a test checks both).
docs: install
	$(BIN)/sectigo-svc settings > docs/settings.md
	$(BIN)/sectigo-svc answers > docs/sectigo-answers.md

bench: install
	$(BIN)/python bench/bench_client.py
	$(BIN)/python bench/bench_service.py

clean:
	rm -rf $(VENV) $(STATE) dist build clients/build .mypy_cache .ruff_cache .pytest_cache
