# The two commands a newcomer needs: `make run` (the whole helpdesk, embedded) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# The test suite runs on real PostgreSQL and Redis (bin/ensure-services starts them if needed). It writes
# nothing into the checkout: no bytecode, no pytest cache (pytest.ini), files under the tests' own tmp folders.
TEST_ENV := DJANGO_DEBUG=1 PYTHONDONTWRITEBYTECODE=1 \
	DATABASE_URL=$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/helpdesk} \
	CELERY_BROKER_URL=$${TEST_BROKER_URL:-redis://127.0.0.1:6379/15} \
	CACHE_URL=$${TEST_CACHE_URL:-redis://127.0.0.1:6379/14}
BENCH_ENV := DJANGO_DEBUG=1 \
	DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/helpdesk_bench} \
	CELERY_BROKER_URL=$${BENCH_BROKER_URL:-redis://127.0.0.1:6379/13} \
	CACHE_URL=$${BENCH_CACHE_URL:-redis://127.0.0.1:6379/12}

NODE_STAMP := node_modules/.installed

.PHONY: install run lint test test-sqlite bench bench-ingest bench-console bench-reports faults screenshots

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $(STAMP)

# Only eslint, for static/*.js (package-lock.json pins it); the console itself has no build step.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

install: $(STAMP) $(NODE_STAMP)

## Run the helpdesk on SQLite + a filesystem broker, with the Slack emulator and demo data.
run: $(STAMP)
	$(PY) bin/run-embedded

## Static checks: formatting and rules (ruff.toml), the layers' import contracts (.importlinter), types of the
## adapter contract and the domain (mypy.ini), and the console's scripts (eslint.config.js).
lint: $(STAMP) $(NODE_STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	DJANGO_DEBUG=1 $(VENV)/bin/mypy
	npx --no-install eslint static/*.js

## Lint, then run the whole test suite against PostgreSQL and Redis, then the console's tests on SQLite.
## The small fault scenarios (tests/faults) mostly wait on their own PostgreSQL, Redis, worker, beat and web process,
## so they run alongside the rest of the suite; their report follows it.
test: lint
	bin/ensure-services
	bin/ensure-browser
	@faults_log=$$(mktemp); \
	$(TEST_ENV) DATABASE_URL=$${TEST_FAULTS_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/helpdesk_faults} \
		$(PY) -m pytest -q tests/faults $(PYTEST_ARGS) > "$$faults_log" 2>&1 & faults_pid=$$!; \
	$(TEST_ENV) $(PY) -m pytest --ignore=tests/faults $(PYTEST_ARGS); suite=$$?; \
	wait $$faults_pid; faults=$$?; \
	echo "--- fault scenarios (tests/faults), run alongside ---"; cat "$$faults_log"; rm -f "$$faults_log"; \
	[ $$suite -eq 0 ] && { [ $$faults -eq 0 ] || [ $$faults -eq 5 ]; }
	$(MAKE) test-sqlite

## The embedded default (SQLite, no services) is a first-class mode: every test runs there too, except those that
## need PostgreSQL itself (marker `postgres`), a real worker or a browser. Its data folder is a temporary one.
test-sqlite: $(STAMP)
	VAR_DIR=$$(mktemp -d) && trap 'rm -rf "$$VAR_DIR"' EXIT && \
	env -u DATABASE_URL -u CELERY_BROKER_URL -u CACHE_URL DJANGO_DEBUG=1 PYTHONDONTWRITEBYTECODE=1 VAR_DIR=$$VAR_DIR \
		$(PY) -m pytest -m "not postgres and not worker and not browser" $(PYTEST_ARGS)

bench: bench-ingest bench-console

bench-ingest: $(STAMP)
	bin/ensure-services
	$(BENCH_ENV) $(PY) -m bench.ingest --platform x --rounds 3
	$(BENCH_ENV) $(PY) -m bench.ingest
	$(BENCH_ENV) $(PY) -m bench.ingest --platform meta --rounds 3
	$(BENCH_ENV) $(PY) -m bench.ingest --platform email --rounds 3

bench-console: $(STAMP)
	bin/ensure-services
	$(BENCH_ENV) DATABASE_URL=$${BENCH_CONSOLE_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/helpdesk_bench_console} \
		$(PY) -m bench.console

## The Reports page's reports and the queue over 1,000,000 tickets (BENCH_REPORTS_ARGS="--tickets 100000 --explain").
bench-reports: $(STAMP)
	bin/ensure-services
	$(BENCH_ENV) DATABASE_URL=$${BENCH_REPORTS_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/helpdesk_bench_reports} \
		$(PY) -m bench.reports $(BENCH_REPORTS_ARGS)

## The fault suite (docs/faults.md): kills, restarts and platform storms against a real worker, beat and web
## process, on a PostgreSQL cluster and a redis-server of its own. FAULTS_ARGS="--messages 500 --scenario web-kill".
faults: $(STAMP)
	bin/ensure-services
	PYTHONDONTWRITEBYTECODE=1 $(PY) -m faults $(FAULTS_ARGS)

## Regenerate docs/screenshots/*.png from the embedded demo (needs Debian's chromium).
screenshots: $(STAMP)
	bin/ensure-browser
	$(PY) bin/screenshots
