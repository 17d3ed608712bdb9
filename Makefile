# Helpdesk webhook ingestion service. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The lock files are made by uv, this version (make lock installs it into .venv).
UV_VERSION := 0.13.9

.DEFAULT_GOAL := help
.PHONY: help install lock run test test-quick test-multi test-browser screenshots image-test bench bench-front-door bench-reconcile bench-console bench-relay bench-partitions drills fuzz check-deploy migrate clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the locked requirements (hash-checked)

# One Python-3.11+ lock for every platform, with each file's hash. Versions already locked
# are kept: pass LOCK_ARGS='--upgrade-package NAME' (or --upgrade) to move them.
UV_COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
             --custom-compile-command 'make lock' $(LOCK_ARGS)

lock: ## Compile requirements*.in into the hashed lock files requirements*.txt (uv)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(UV_COMPILE) requirements.in -o requirements.txt
	$(UV_COMPILE) requirements-dev.in -o requirements-dev.txt

run: $(STAMP) ## Serve on :8080 (starts PostgreSQL/Redis under .data/ unless DATABASE_URL/REDIS_URL are set)
	$(BIN)/python -m devserver

test: $(STAMP) ## Run the tests (they start their own PostgreSQL and Redis)
	$(BIN)/python -m pytest

test-quick: $(STAMP) ## The inner loop: everything but the tests that boot gunicorn, nginx or containers
	$(BIN)/python -m pytest -m "not gunicorn and not multi_instance and not image"

test-multi: $(STAMP) ## Two instances behind a real nginx, shared PostgreSQL and Redis (needs nginx)
	$(BIN)/python -m pytest -m multi_instance

test-browser: $(STAMP) ## The console in a real headless Chromium: flows and screenshots (needs chromium, chromium-driver)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { echo "chromium not found: apt-get install chromium chromium-driver"; exit 1; }
	$(BIN)/python -m pytest -m browser

screenshots: $(STAMP) ## Remake the README's console pictures in docs/console/ (needs chromium, chromium-driver)
	$(BIN)/python -u bench/console_screenshots.py

image-test: $(STAMP) ## Build the image, run its app and relay containers on real PostgreSQL/Redis (needs docker.io, mmdebstrap)
	@command -v docker >/dev/null || { echo "docker not found: apt-get install docker.io (and mmdebstrap: it builds the base image when none can be pulled)"; exit 1; }
	$(BIN)/python -m pytest -m image

bench: $(STAMP) ## Service vs bare reference app under wrk, side by side (prints figures; needs wrk)
	$(BIN)/python -u bench/run.py --scale --memory
	$(BIN)/python -u bench/sources_lookup.py

bench-front-door: $(STAMP) ## /health while the front door is attacked, through the shipped nginx (prints figures; needs nginx)
	$(BIN)/python -u bench/front_door.py $(FRONT_DOOR_ARGS)

bench-reconcile: $(STAMP) ## The reconciler's own speed against the fake vendor API (prints figures)
	$(BIN)/python -u bench/reconcile.py

bench-console: $(STAMP) ## The console's pages on 1,000,000 tickets and 10,000,000 events, p50/p95 per page (prints figures)
	$(BIN)/python -u bench/console.py $(BENCH_CONSOLE_ARGS)

bench-relay: $(STAMP) ## The relay's throughput to Redis, a Redis Cluster and NATS JetStream (prints figures)
	$(BIN)/python -u bench/relay.py $(BENCH_RELAY_ARGS)

bench-partitions: $(STAMP) ## The partitioned events' hot plans, and retention by month against row updates (prints figures)
	$(BIN)/python -u bench/partitions.py $(BENCH_PARTITIONS_ARGS)

drills: $(STAMP) ## Fault drills under load: Redis killed and stalled, PostgreSQL restarted, a worker killed
	$(BIN)/python -u bench/drills.py

fuzz: $(STAMP) ## schemathesis against a live production-mode instance, from ingestion/openapi.yaml
	$(BIN)/python -u bench/fuzz.py

check-deploy: $(STAMP) ## Lint the Dockerfile, validate the Kubernetes manifests, Prometheus config and rules
	$(BIN)/hadolint Dockerfile
	$(BIN)/kubernetes-validate --strict --quiet deploy/k8s/[!k]*.yaml
	@command -v promtool >/dev/null || { echo "promtool not found: apt-get install prometheus (Debian ships promtool in it)"; exit 1; }
	promtool check config deploy/prometheus/prometheus.yml
	promtool test rules deploy/prometheus/alerts.test.yml

migrate: $(STAMP) ## Apply the pending schema migrations to DATABASE_URL
	$(BIN)/python -m ingestion migrate

clean: ## Remove .venv and the local servers' data in .data/
	rm -rf $(VENV) .data
