# Two commands for a fresh machine: `make run` (local demo) and `make test` (the whole suite).
# Everything installs into .venv; nothing here needs Google Cloud.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CALLBACK_PORT ?= 8765
PORT ?= 8000

# The local demo: SQLite, a local stand-in for the Workflows callback endpoint, no Google auth.
RUN_ENV := DJANGO_DEBUG=1 \
	APPROVALS_BASE_URL=http://127.0.0.1:$(PORT) \
	APPROVALS_CALLBACK_URL_PREFIXES=http://127.0.0.1:$(CALLBACK_PORT)/v1/ \
	APPROVALS_CALLBACK_AUTH=none \
	DJANGO_EMAIL_BACKEND=django.core.mail.backends.console.EmailBackend \
	APPROVALS_API_TOKEN=$${APPROVALS_API_TOKEN:-local-demo-token}


.PHONY: run test lint format install chromium clean screenshots bench bench-smoke profile

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# A Chromium for the browser tests: found, or fetched (tools/ensure-chromium says how and why).
chromium: $(STAMP)
	tools/ensure-chromium

run: $(STAMP)
	$(RUN_ENV) $(BIN)/python manage.py migrate --no-input
	$(RUN_ENV) $(BIN)/python manage.py demo_setup
	@echo "API token for curl: $${APPROVALS_API_TOKEN:-local-demo-token}"
	@# Beside the app: the stand-in callback endpoint, the delivery job every 5 s (it retries
	@# the callbacks whose first attempt failed and records expiries, as on Google Cloud), and
	@# the e-mail job every 5 s (the mails print in this terminal).
	@$(RUN_ENV) $(BIN)/python -m standins.workflows --port $(CALLBACK_PORT) & \
	receiver=$$!; \
	$(RUN_ENV) $(BIN)/python manage.py deliver_callbacks --loop --pause 5 --verbosity 0 & \
	deliverer=$$!; \
	$(RUN_ENV) $(BIN)/python manage.py send_notifications --loop --pause 5 --verbosity 0 & \
	mailer=$$!; trap 'kill $$receiver $$deliverer $$mailer 2>/dev/null' EXIT INT TERM; \
	$(RUN_ENV) $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Tests run with production-like settings (DEBUG off), on SQLite unless DATABASE_URL names
# another database; CI runs both. In parallel, one worker per core (pytest-xdist; each worker
# has its own test database); PYTEST_WORKERS=0 runs them in this one process.
PYTEST_WORKERS ?= auto
test: $(STAMP) lint chromium
	DJANGO_SECRET_KEY=tests-only-secret-key $(BIN)/python -m pytest -n $(PYTEST_WORKERS) \
		--dist worksteal $(PYTEST_ARGS)

# Screenshots of the main pages for the README, taken by the browser tests.
screenshots: $(STAMP) chromium
	APPROVER_SHOTS_DIR=$(CURDIR)/docs/screenshots DJANGO_SECRET_KEY=tests-only-secret-key \
		$(BIN)/python -m pytest -q -m browser approvals/tests/test_browser.py

# Benchmarks (docs/benchmarks.md): gunicorn and PostgreSQL (postgres@127.0.0.1:5432, database
# approver_bench, dropped and created) against the baselines; bench-smoke runs for seconds and
# writes no docs.
bench: $(STAMP)
	$(BIN)/python -m bench.driver

bench-smoke: $(STAMP)
	$(BIN)/python -m bench.driver --smoke

# Where a registration and an inbox page spend their time (pyinstrument; database approver_profile).
profile: $(STAMP)
	$(BIN)/python -m bench.profile

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache
