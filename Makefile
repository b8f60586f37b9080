# The README's two commands are `make run` and `make test`; everything else is for developers
# and CI. Only the Rust toolchain is assumed; Python tools go into a local virtualenv (.venv),
# Chromium and chromedriver (browser tests) come from Debian's packages.

SHELL := /bin/bash
CARGO ?= cargo
PG_URL ?= postgres://postgres@127.0.0.1:5432/postgres
VENV := .venv
CHROMEDRIVER := /usr/bin/chromedriver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PY_TOOLS := openapi-spec-validator==0.9.0 openai==3.57.0

.PHONY: run demo test test-postgres chaos screenshots lint fmt docs openapi-check bench bench-proxy build release clean help

help:
	@echo "make run            start the server on the embedded SQLite database (data/)"
	@echo "make demo           seed two demo organizations, print their logins, then run"
	@echo "make test           run the whole test suite (SQLite)"
	@echo "make test-postgres  run the integration suite on PostgreSQL (PG_URL=$(PG_URL))"
	@echo "make screenshots    photograph the web console into docs/screenshots (headless Chromium)"
	@echo "make chaos          fault tests: kill -9 a replica, stop PostgreSQL, under load"
	@echo "make lint           rustfmt check + clippy with warnings denied"
	@echo "make fmt            format the code"
	@echo "make docs           regenerate docs/authorization.md from the permission map"
	@echo "make openapi-check  validate the OpenAPI document with openapi-spec-validator"
	@echo "make schemathesis   fuzz the running server against its OpenAPI document (Schemathesis)"
	@echo "make bench          HTTP load + scale + sign-ins vs raw argon2id, on PostgreSQL (BENCH_SECONDS, BENCH_CONNECTIONS)"
	@echo "make bench-proxy    the proxy vs calling the upstream directly (latency, throughput, CPU, time between streamed tokens)"
	@echo "make soak           RSS of the release server under hostile logins and fuzz-like bodies"

run:
	$(CARGO) run -p inventiv-server --bin inventiv-server -- serve

demo:
	$(CARGO) run -p inventiv-server --bin inventiv-server -- seed-demo
	$(CARGO) run -p inventiv-server --bin inventiv-server -- serve

build:
	$(CARGO) build --workspace --all-targets

release:
	$(CARGO) build --release -p inventiv-server

# --include-ignored: the tests that need the Python tools of .venv (the official openai
# client) are ignored by a bare `cargo test` and run here, where the venv exists.
test: $(VENV)/.installed $(CHROMEDRIVER)
	$(CARGO) test --workspace -- --include-ignored

# Debian's Chromium and its WebDriver, for the console's browser tests (tests/browser).
$(CHROMEDRIVER):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver

# The README's pictures of the console, taken by the browser tests.
screenshots: $(CHROMEDRIVER)
	SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(CARGO) test -p inventiv-server --test browser screenshots

test-postgres: $(VENV)/.installed
	INVENTIV_TEST_DATABASE_URL=$${INVENTIV_TEST_DATABASE_URL:-$(PG_URL)} $(CARGO) test -p inventiv-server --test api -- --include-ignored

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p inventiv-server --test chaos -- -D warnings

# Fault tests (kill -9 of a replica under write load; a private PostgreSQL server stopped
# under load). Not part of `cargo test`: they kill processes. One at a time.
chaos:
	INVENTIV_TEST_DATABASE_URL=$${INVENTIV_TEST_DATABASE_URL:-$(PG_URL)} $(CARGO) test -p inventiv-server --test chaos -- --test-threads=1 --nocapture

fmt:
	$(CARGO) fmt --all

# On PostgreSQL (a fresh database, dropped at the end); INVENTIV_BENCH_DATABASE_URL=sqlite for SQLite.
# login_load runs the release binary as a child process (its peak RSS is read from /proc).
bench:
	$(CARGO) build --release -p inventiv-server --bin inventiv-server
	INVENTIV_BENCH_DATABASE_URL=$${INVENTIV_BENCH_DATABASE_URL:-$(PG_URL)} $(CARGO) bench -p inventiv-server --bench http_load
	INVENTIV_BENCH_DATABASE_URL=$${INVENTIV_BENCH_DATABASE_URL:-$(PG_URL)} $(CARGO) bench -p inventiv-server --bench login_load

bench-proxy:
	$(CARGO) build --release -p inventiv-server --bin inventiv-server
	$(CARGO) bench -p inventiv-server --bench proxy_load
	$(CARGO) bench -p inventiv-server --bench stream_gaps

# Memory under hostile bodies (issue 16): the release binary as a child process, its VmRSS and
# VmHWM read from /proc; fails when a target is missed. SQLite unless INVENTIV_BENCH_DATABASE_URL.
.PHONY: soak
soak:
	$(CARGO) build --release -p inventiv-server --bin inventiv-server
	$(CARGO) bench -p inventiv-server --bench soak

docs:
	UPDATE_DOCS=1 $(CARGO) test -p inventiv-domain --test authorization_doc

$(VENV)/.installed: Makefile
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(PY_TOOLS)
	touch $@

openapi-check: $(VENV)/.installed
	$(CARGO) run --quiet -p inventiv-server --bin inventiv-server -- openapi > target/openapi.json
	$(VENV)/bin/openapi-spec-validator target/openapi.json

# Schemathesis against the real debug server on a fresh SQLite database, in a loopback-only
# network namespace; every operation, default checks (scripts/schemathesis.sh). Installed
# apart from PY_TOOLS: `make test` does not need it.
.PHONY: schemathesis
SCHEMATHESIS_PIN := schemathesis==4.32.5

$(VENV)/.schemathesis: $(VENV)/.installed
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(SCHEMATHESIS_PIN)
	touch $@

schemathesis: $(VENV)/.schemathesis
	$(CARGO) build -p inventiv-server --bin inventiv-server
	VENV=$(VENV) bash scripts/schemathesis.sh

clean:
	$(CARGO) clean
	rm -rf $(VENV)
