# The two commands a newcomer needs: `make run` (the whole helpdesk, embedded) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# The test suite runs on real PostgreSQL and Redis (bin/ensure-services starts them if needed).
TEST_ENV := DJANGO_DEBUG=1 \
	DATABASE_URL=$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/helpdesk} \
	CELERY_BROKER_URL=$${TEST_BROKER_URL:-redis://127.0.0.1:6379/15} \
	CACHE_URL=$${TEST_CACHE_URL:-redis://127.0.0.1:6379/14}
BENCH_ENV := DJANGO_DEBUG=1 \
	DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/helpdesk_bench} \
	CELERY_BROKER_URL=$${BENCH_BROKER_URL:-redis://127.0.0.1:6379/13} \
	CACHE_URL=$${BENCH_CACHE_URL:-redis://127.0.0.1:6379/12}

.PHONY: install run lint test test-sqlite bench bench-ingest bench-console screenshots

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

## Run the helpdesk on SQLite + a filesystem broker, with the Slack emulator and demo data.
run: $(STAMP)
	$(PY) bin/run-embedded

## Static checks (ruff.toml): undefined names, likely bugs, import order.
lint: $(STAMP)
	$(VENV)/bin/ruff check .

## Lint, then run the whole test suite against PostgreSQL and Redis, then the console's tests on SQLite.
test: lint
	bin/ensure-services
	bin/ensure-browser
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)
	$(MAKE) test-sqlite

## The embedded default (SQLite, no services) is a first-class mode: the console and ticket workflows
## (search fallback, locks that SQLite skips, merges, macros) must hold there too. Workers and browsers
## run on PostgreSQL only.
SQLITE_TESTS := tests/test_console.py tests/test_queue_filters.py tests/test_saved_views.py tests/test_ticket_page.py \
	tests/test_ticket_page_polish.py tests/test_live_ticket.py tests/test_merge.py tests/test_bulk_actions.py \
	tests/test_macros.py tests/test_notes.py tests/test_attachments.py tests/test_pipeline.py
test-sqlite: $(STAMP)
	rm -rf var/test-sqlite
	env -u DATABASE_URL -u CELERY_BROKER_URL -u CACHE_URL DJANGO_DEBUG=1 VAR_DIR=var/test-sqlite \
		$(PY) -m pytest -m "not worker and not browser" -p no:cacheprovider $(SQLITE_TESTS)

bench: bench-ingest bench-console

bench-ingest: $(STAMP)
	bin/ensure-services
	$(BENCH_ENV) $(PY) -m bench.ingest --platform x --rounds 3
	$(BENCH_ENV) $(PY) -m bench.ingest

bench-console: $(STAMP)
	bin/ensure-services
	$(BENCH_ENV) DATABASE_URL=$${BENCH_CONSOLE_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/helpdesk_bench_console} \
		$(PY) -m bench.console

## Regenerate docs/screenshots/*.png from the embedded demo (needs Debian's chromium).
screenshots: $(STAMP)
	bin/ensure-browser
	$(PY) bin/screenshots
