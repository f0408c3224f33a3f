# Parallax: `make demo` runs the live demo, `make test` runs the tests. Both set up everything
# they need first (virtualenv, jars, Airflow's database); downloads are cached outside the
# clone (PARALLAX_CACHE_DIR, default ~/.cache/parallax) so later runs reuse them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
CACHE ?= $(or $(PARALLAX_CACHE_DIR),$(HOME)/.cache/parallax)
export UV_CACHE_DIR := $(CACHE)/uv
# PySpark is published only as a source distribution, and uv builds it again in every fresh
# clone (about a gigabyte of cache each time): its wheel is built once, into this wheelhouse.
WHEELHOUSE := $(CACHE)/wheels
export UV_FIND_LINKS := $(WHEELHOUSE)
PYSPARK_VERSION := $(shell sed -n 's/^ *pyspark==\([0-9.]*\).*/\1/p' setup.cfg)
PYSPARK_WHEEL := $(WHEELHOUSE)/pyspark-$(PYSPARK_VERSION)-py2.py3-none-any.whl
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
BIN := $(VENV)/bin
# The dashboard's front end: npm packages pinned in its package-lock.json (npm's cache
# kept with the others), built by esbuild into serving_layer/dashboard/dist.
DASHBOARD := serving_layer/dashboard
export npm_config_cache := $(CACHE)/npm

.PHONY: setup dashboard browser demo lint unit test bench stack-up stack-down clean-state

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "uv>=0.5,<1"

$(PYSPARK_WHEEL): | $(BIN)/uv
	$(BIN)/pip wheel --quiet --disable-pip-version-check --no-cache-dir --no-deps "pyspark==$(PYSPARK_VERSION)" -w $(WHEELHOUSE)

$(VENV)/.installed: $(BIN)/uv setup.cfg pyproject.toml $(PYSPARK_WHEEL)
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e ".[test]"
	touch $@

$(DASHBOARD)/node_modules/.installed: $(DASHBOARD)/package.json $(DASHBOARD)/package-lock.json
	@command -v npm >/dev/null || { echo "installing Debian's nodejs and npm to build the dashboard"; \
		$$( [ "$$(id -u)" -eq 0 ] || echo sudo ) apt-get install -y --no-install-recommends nodejs npm; }
	cd $(DASHBOARD) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(DASHBOARD)/dist/manifest.json: $(DASHBOARD)/node_modules/.installed $(DASHBOARD)/build.mjs $(shell find $(DASHBOARD)/src -type f)
	cd $(DASHBOARD) && npm run --silent build

dashboard: $(DASHBOARD)/dist/manifest.json

setup: $(VENV)/.installed dashboard
	$(BIN)/parallax stack fetch

demo: setup
	$(BIN)/parallax demo

# The tracker's browser tests drive Debian's Chromium (Playwright's own download is not
# used); install it when it is missing, or point PARALLAX_CHROMIUM at another Chromium.
browser:
	@if [ -z "$$PARALLAX_CHROMIUM" ] && ! command -v chromium >/dev/null; then \
		echo "installing Debian's chromium for the tracker's browser tests"; \
		$$( [ "$$(id -u)" -eq 0 ] || echo sudo ) apt-get install -y --no-install-recommends chromium \
		|| { $$( [ "$$(id -u)" -eq 0 ] || echo sudo ) apt-get update && \
		     $$( [ "$$(id -u)" -eq 0 ] || echo sudo ) apt-get install -y --no-install-recommends chromium; }; \
	fi

# The linter (ruff, pyproject.toml) and the import contracts (import-linter, setup.cfg).
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# The tests that need no stack, in seconds.
unit: $(VENV)/.installed
	cd $(DASHBOARD) && npm test --silent
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# pytest exits 5 when it collected no test: that is not a failure of the suite.
test: setup browser lint
	cd $(DASHBOARD) && npm test --silent
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

# Benchmarks need the stack (`make stack-up`); figures go to BENCHMARKS.md by hand.
bench: setup
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e ".[test,bench]"
	@command -v wrk >/dev/null || $$( [ "$$(id -u)" -eq 0 ] || echo sudo ) apt-get install -y --no-install-recommends wrk
	$(BIN)/python -m bench.batch_bench
	$(BIN)/python -m bench.speed_bench --events 18000000 --rate 20000 --trigger-seconds 30 --visitors 300000
	$(BIN)/python -m bench.speed_bench --events 4800000 --rate 6000 --trigger-seconds 5 --visitors 90000
	$(BIN)/python -m bench.collector_bench --workers 2 4 --duration 30
	$(BIN)/python -m bench.report_bench --events-per-day 1000000 --days 30 --clients 20 --duration 60
	$(BIN)/python -m bench.reprocess_bench --events-per-day 1000000 --days 7
	$(BIN)/python -m bench.erasure_bench --events-per-day 1000000 --days 7 --visitors 100
	$(BIN)/python -m bench.compaction_bench --rate 2000 --seconds 3600 --rounds 3
	$(BIN)/python -m bench.live_bench --rate 5000 --warmup 60 --duration 120
	$(BIN)/python -m bench.fanout_bench --clients 1000 --sites 10 --updates 200
	$(BIN)/python -m bench.alert_bench --trials 30
	$(BIN)/python -m bench.dashboard_bench --loads 10

stack-up: setup
	$(BIN)/parallax stack up --airflow

stack-down:
	$(BIN)/parallax stack down

clean-state: stack-down
	rm -rf var
