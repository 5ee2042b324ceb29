# The Milwaukee AIM data platform. `make demo` runs the pipeline, `make test` runs the tests.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)

.PHONY: demo test bench stack stack-stop redis-server screenshots chromium install lock warehouse-url psql psql-analyst warehouse-stop airflow-ui quarantine release discard clean

demo: $(STAMP) ## run every source end to end on the embedded warehouse, print a summary
	$(BIN)/python -m aim_demo demo

test: $(STAMP) chromium redis-server ## run the test suite (real PostgreSQL, real S3 server, real DAG runs, real browser); PYTEST_ARGS=... passes options
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP) ## whole-path ingest benchmark (raw COPY pipe, ingest tasks, no-change rerun, dlt) at 10k/100k/1M rows, 3 repeats; rewrites docs/benchmarks.md (~10 min on 2 cores); BENCH_SERVER=URL for another PostgreSQL server
	$(BIN)/python benchmarks/ingest_path.py --sizes 10000,100000,1000000 --repeats 3 --write-docs docs/benchmarks.md $(if $(BENCH_SERVER),--server "$(BENCH_SERVER)")

stack: $(STAMP) redis-server ## Airflow as deployed (CeleryExecutor, 2 Celery workers, own redis, PostgreSQL metadata) in the background on http://127.0.0.1:8080
	$(BIN)/python -m aim_demo stack

stack-stop: $(STAMP) ## stop every process `make stack` started (the warehouse keeps running: make warehouse-stop)
	$(BIN)/python -m aim_demo stack-stop

screenshots: $(STAMP) chromium ## the docs' screenshots (docs/*.png) from the site `make demo` published (run make demo first; SITE=folder for another)
	$(BIN)/python -m aim_demo screenshots $(if $(SITE),"$(SITE)")

redis-server: ## Debian's redis-server: the Celery broker make stack starts on a free loopback port (never one already running)
	@test -x /usr/bin/redis-server || { echo "installing Debian's redis-server (apt-get) for make stack"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server > /dev/null; }

chromium: ## Debian's Chromium for the scorecard's browser test (Playwright drives /usr/bin/chromium)
	@test -x /usr/bin/chromium || { echo "installing Debian's chromium (apt-get) for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null; }

install: $(STAMP)

$(STAMP): requirements.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	touch $(STAMP)

lock: ## re-resolve the pinned set after changing requirements.txt
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade "pip==26.3"
	.venv-lock/bin/python -m pip install --quiet -r requirements.txt
	{ echo "# Full pinned set (pip freeze of a fresh install of requirements.txt on Python 3.11)."; \
	  echo "# Regenerate: make lock"; .venv-lock/bin/python -m pip freeze; } > constraints.txt
	rm -rf .venv-lock

warehouse-url: $(STAMP) ## print the warehouse URL (starts the embedded server if needed)
	@$(BIN)/python -m aim_demo url

psql: $(STAMP) ## open psql on the warehouse
	$(BIN)/python -m aim_demo psql

psql-analyst: $(STAMP) ## open psql on the warehouse as aim_analyst (password from .aim/aim_analyst.pgpass)
	$(BIN)/python -m aim_demo psql-analyst

warehouse-stop: $(STAMP) ## stop the embedded warehouse server
	$(BIN)/python -m aim_demo stop

airflow-ui: $(STAMP) ## the Airflow UI on http://localhost:8080 (airflow standalone) over the demo setup
	$(BIN)/python -m aim_demo standalone

quarantine: $(STAMP) ## list quarantined batches (make quarantine BATCH=... shows one)
	$(BIN)/python -m aim_demo quarantine $(if $(BATCH),show "$(BATCH)",list)

release: $(STAMP) ## release a quarantined batch after review: make release BATCH=... NOTE="why"
	@test -n "$(BATCH)" -a -n "$(NOTE)" || { echo 'usage: make release BATCH=<batch id> NOTE="why it is fit to publish"'; exit 2; }
	$(BIN)/python -m aim_demo quarantine release "$(BATCH)" --note "$(NOTE)"

discard: $(STAMP) ## discard a quarantined batch after review: make discard BATCH=... NOTE="why"
	@test -n "$(BATCH)" -a -n "$(NOTE)" || { echo 'usage: make discard BATCH=<batch id> NOTE="why"'; exit 2; }
	$(BIN)/python -m aim_demo quarantine discard "$(BATCH)" --note "$(NOTE)"

clean: ## remove local state (warehouse data, exports, Airflow home); keeps the virtualenv
	-$(BIN)/python -m aim_demo stack-stop
	-$(BIN)/python -m aim_demo stop
	rm -rf .aim
