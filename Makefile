# The project's commands. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYSTEM_PACKAGES := nginx redis-server
URL ?=
TOKEN ?=
DOMAIN ?=
NAME ?=
SOCKETS ?=
DAPHNE_INSTANCES ?=
# What the tests need besides (program:package where the names differ): Debian's Chromium
# for the browser tests (Playwright drives it; never `playwright install`), PostgreSQL (the
# tests start a private server), the tools of the deployment checks and of the rehearsals
# (one server under systemd, multi-host), Debian's Prometheus (a real one scrapes a stack;
# promtool checks deploy/prometheus/), and Debian's Docker Engine and Compose 1.29 for
# the container tests.
TEST_PACKAGES := chromium openssl pg_ctlcluster:postgresql systemd-analyze:systemd prometheus promtool:prometheus \
	debootstrap systemd-nspawn:systemd-container ip:iproute2 dockerd:docker.io docker-compose

.PHONY: help up down status logs top smoke test lint lock system-packages test-packages check-deploy render-deploy rename strip-demo rehearse demo-data screenshot bench bench-replay load soak

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): app/requirements.txt deploy/local/requirements.txt tests/requirements.txt
	@echo "==> Creating $(VENV) with the pinned requirements"
	@test -x $(PYTHON) || python3 -m venv $(VENV)
	@$(PYTHON) -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	@touch $@

.env:
	@echo "==> Creating .env from .env.example"
	@cp .env.example .env

system-packages: ## Install nginx and redis-server if missing (apt-get, when root)
	@deploy/local/system-packages.sh $(SYSTEM_PACKAGES)

test-packages: ## Install what the tests need too: chromium, systemd tools, debootstrap, docker (apt-get, when root)
	@deploy/local/system-packages.sh $(SYSTEM_PACKAGES) $(TEST_PACKAGES)

up: $(STAMP) .env system-packages ## Start the whole stack on 127.0.0.1:PUBLIC_PORT (default 8080)
	@$(PYTHON) deploy/local/stack.py up

down: $(STAMP) ## Stop everything `make up` started
	@$(PYTHON) deploy/local/stack.py down

status: $(STAMP) ## Show the stack's processes
	@$(PYTHON) deploy/local/stack.py status

logs: $(STAMP) ## Follow the stack's logs
	@$(PYTHON) deploy/local/stack.py logs

top: $(STAMP) ## A live view of the stack: sockets per daphne, messages/s, push p99, last closes
	@$(PYTHON) deploy/local/stack.py top

smoke: $(STAMP) ## Smoke-test a deployment through nginx: make smoke [URL=https://...] [TOKEN=...]
	@if [ -n "$(URL)" ]; then \
		$(PYTHON) deploy/smoke.py "$(URL)" $(if $(TOKEN),--token "$(TOKEN)"); \
	else \
		$(PYTHON) deploy/local/stack.py smoke; \
	fi

test: $(STAMP) test-packages ## Run every test (unit, integration, end-to-end, browser, deployment) and lint
	@$(MAKE) --no-print-directory lint
	@$(PYTHON) -m pytest -c tests/pytest.ini
	@echo "==> The database tests again, on PostgreSQL"
	@$(PYTHON) -m pytest -c tests/pytest.ini --database postgres tests/unit tests/integration

check-deploy: $(STAMP) test-packages ## Check the deployment kit: nginx -t, gixy, systemd-analyze, compose schema, check --deploy
	@$(PYTHON) -m pytest -c tests/pytest.ini tests/deploykit tests/unit/test_settings.py

render-deploy: ## Write the nginx site, systemd units and env file for a server: make render-deploy DOMAIN=chat.example.com
	@test -n "$(DOMAIN)" || { echo "Usage: make render-deploy DOMAIN=chat.example.com [DAPHNE_INSTANCES=2]" >&2; exit 2; }
	@python3 deploy/render.py --domain "$(DOMAIN)" $(if $(DAPHNE_INSTANCES),--daphne-instances "$(DAPHNE_INSTANCES)")

# demo: begin
strip-demo: $(STAMP) ## Remove the demo (chat, notifications, the page), keep the kit: run on a fresh copy
	@$(PYTHON) deploy/strip_demo.py
# demo: end

rename: ## Give this copy its own name (units, paths, database, Redis prefix, the deploy guide): make rename NAME=chatapp
	@test -n "$(NAME)" || { echo "Usage: make rename NAME=yourname" >&2; exit 2; }
	@python3 deploy/rename.py "$(NAME)"

rehearse: $(STAMP) test-packages ## Boot the kit under a real systemd (nspawn container) and smoke-test it over TLS
	@$(PYTHON) -m pytest -c tests/pytest.ini tests/rehearsal

# demo: begin
demo-data: $(STAMP) .env ## Create the demo users alice and bob (idempotent) and print the sign-in
	@$(PYTHON) app/manage.py migrate --noinput -v 0
	@$(PYTHON) app/manage.py demo_data

screenshot: $(STAMP) test-packages ## Regenerate docs/screenshot.png (the page) and docs/top.png (make top), from the tests
	@SCREENSHOT=$(CURDIR)/docs/screenshot.png $(PYTHON) -m pytest -c tests/pytest.ini tests/e2e/test_browser.py -k screenshot
	@TOP_SCREENSHOT=$(CURDIR)/docs/top.png $(PYTHON) -m pytest -c tests/pytest.ini tests/e2e/test_metrics_and_logs.py -k top

bench: $(STAMP) ## Benchmark the tuned stack against the article's default and a bare floor (~10 min; QUICK=1: ~3 min)
	@deploy/local/system-packages.sh $(SYSTEM_PACKAGES) wrk
	@$(PYTHON) tests/bench/run.py $(if $(QUICK),--quick)

bench-replay: $(STAMP) ## Measure what resuming a 100,000-message room costs a daphne (~3 min)
	@deploy/local/system-packages.sh $(SYSTEM_PACKAGES)
	@$(PYTHON) tests/bench/replay.py

load: $(STAMP) ## Deploys and failures under load: restarts, reloads, kills with 5,000 sockets (SOCKETS=...; ~5 min)
	@deploy/local/system-packages.sh $(SYSTEM_PACKAGES) pg_ctlcluster:postgresql
	@$(PYTHON) tests/load/run.py $(if $(SOCKETS),--sockets $(SOCKETS))

soak: $(STAMP) ## Memory under churn: 50,000 sockets opened and closed in waves, with group traffic (~10 min)
	@deploy/local/system-packages.sh $(SYSTEM_PACKAGES) pg_ctlcluster:postgresql
	@$(PYTHON) tests/load/soak.py
# demo: end

lint: $(STAMP) ## Check the code with ruff
	@$(VENV)/bin/ruff check --config app/ruff.toml app deploy tests
	@$(VENV)/bin/ruff format --check --config app/ruff.toml app deploy tests

lock: ## Re-pin the requirements: production (app/), the local stack (deploy/local/), the tests
	@set -e; venv=$$(mktemp -d); trap 'rm -rf "$$venv"' EXIT; \
	python3 -m venv "$$venv"; \
	"$$venv/bin/pip" install --quiet -r app/requirements.in; \
	{ echo '# Pinned production dependencies: generated from requirements.in by `make lock`; do not edit by hand.'; \
		"$$venv/bin/pip" freeze; grep -E '^[^#].*; *python' app/requirements.in; } > app/requirements.txt; \
	pin() { \
		"$$venv/bin/pip" install --quiet -r "$$1/requirements.in"; \
		{ echo "# Pinned $$2: generated from requirements.in by \`make lock\`; do not edit by hand."; \
			echo "-r $$(realpath --relative-to="$$1" "$$3")"; \
			"$$venv/bin/pip" freeze | grep -vxF -f <(cat app/requirements.txt "$$3" | grep -v '^[#-]'); \
		} > "$$1/requirements.txt"; }; \
	pin deploy/local 'local-stack tools' app/requirements.txt; \
	pin tests 'test tools' deploy/local/requirements.txt
