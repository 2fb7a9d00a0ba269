# Two commands for a fresh machine: `make run` (local demo) and `make test` (the whole suite).
# Everything installs into .venv; nothing here needs Google Cloud.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CALLBACK_PORT ?= 8765
SLACK_PORT ?= 8766
CHAT_PORT ?= 8767
METADATA_PORT ?= 8768
PORT ?= 8000

# The local demo: SQLite, local stand-ins for the Workflows callback endpoint, Slack and Google
# Chat (with a metadata server for the Chat API's token, and an empty gcloud folder so that a
# developer's own Google login is not picked up), no Google auth for callbacks.
RUN_ENV := DJANGO_DEBUG=1 \
	APPROVALS_BASE_URL=http://127.0.0.1:$(PORT) \
	APPROVALS_CALLBACK_URL_PREFIXES=http://127.0.0.1:$(CALLBACK_PORT)/v1/ \
	APPROVALS_CALLBACK_AUTH=none \
	DJANGO_EMAIL_BACKEND=django.core.mail.backends.console.EmailBackend \
	APPROVALS_API_TOKEN=$${APPROVALS_API_TOKEN:-local-demo-token} \
	APPROVALS_SLACK_API_URL=http://127.0.0.1:$(SLACK_PORT)/api/ \
	APPROVALS_SLACK_BOT_TOKEN=xoxb-approver-test-bot-token \
	APPROVALS_SLACK_SIGNING_SECRET=approver-test-signing-secret \
	APPROVALS_GOOGLE_CHAT_AUDIENCE=123456789012 \
	APPROVALS_GOOGLE_CHAT_API_URL=http://127.0.0.1:$(CHAT_PORT)/ \
	APPROVALS_GOOGLE_CHAT_CERTS_URL=http://127.0.0.1:$(CHAT_PORT)/service_accounts/v1/metadata/x509/chat@system.gserviceaccount.com \
	GCE_METADATA_HOST=127.0.0.1:$(METADATA_PORT) GCE_METADATA_IP=127.0.0.1:$(METADATA_PORT) \
	GOOGLE_APPLICATION_CREDENTIALS= CLOUDSDK_CONFIG=$(CURDIR)/$(VENV)/no-gcloud


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
	@# Beside the app: the stand-ins of the callback endpoint, Slack and Google Chat (each
	@# chat stand-in with a page showing the people's messages, whose buttons send the
	@# platform's real signed requests to the app), started first so that the demo's first
	@# notices reach them; then the delivery job every 5 s (it retries the callbacks whose first
	@# attempt failed and records expiries, as on Google Cloud) and the notice job every 5 s
	@# (the mails print in this terminal; the chat messages appear on those pages).
	@mkdir -p $(VENV)/no-gcloud
	@$(RUN_ENV) $(BIN)/python -m standins.workflows --port $(CALLBACK_PORT) & \
	receiver=$$!; \
	$(RUN_ENV) $(BIN)/python -m standins.slack --port $(SLACK_PORT) \
		--app-url http://127.0.0.1:$(PORT)/integrations/slack/interactions \
		--user manager@example.com --user controller@example.com & \
	slack=$$!; \
	$(RUN_ENV) $(BIN)/python -m standins.google_chat --port $(CHAT_PORT) \
		--metadata-port $(METADATA_PORT) \
		--app-url http://127.0.0.1:$(PORT)/integrations/google-chat/events & \
	chat=$$!; \
	trap 'kill $$receiver $$slack $$chat $$deliverer $$mailer 2>/dev/null' EXIT INT TERM; \
	$(RUN_ENV) $(BIN)/python manage.py migrate --no-input --verbosity 0 && \
	$(RUN_ENV) $(BIN)/python manage.py demo_setup && \
	echo "API token for curl: $${APPROVALS_API_TOKEN:-local-demo-token}" && \
	echo "Slack, as the demo people see it: http://127.0.0.1:$(SLACK_PORT)/" && \
	echo "Google Chat, as they see it:      http://127.0.0.1:$(CHAT_PORT)/ (add the app as manager@example.com)" && \
	{ $(RUN_ENV) $(BIN)/python manage.py deliver_callbacks --loop --pause 5 --verbosity 0 & \
	deliverer=$$!; \
	$(RUN_ENV) $(BIN)/python manage.py send_notifications --loop --pause 5 --verbosity 0 & \
	mailer=$$!; \
	$(RUN_ENV) $(BIN)/python manage.py runserver 127.0.0.1:$(PORT); }

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
	$(BIN)/python -m bench.profile $(PROFILE_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache
