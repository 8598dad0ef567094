# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

DEMO_DATA      ?= data/demo
DEMO_LAKEHOUSE ?= lakehouse
DEMO_SUBS      ?= 300
DEMO_DAYS      ?= 365

.PHONY: setup browser demo test test-reliability bench clean

setup: $(STAMP) browser

# Headless Chromium for the dashboard test (Debian's package; the test skips, saying so, without it).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the dashboard browser test"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "could not install chromium: the browser test will be skipped"; \
	  else echo "no /usr/bin/chromium (apt-get install chromium): the browser test will be skipped"; fi; \
	fi

$(STAMP): pyproject.toml
	@command -v java >/dev/null || { echo "Java 17 is required (apt-get install openjdk-17-jdk-headless)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[local,models,dashboards,dev]"
	$(PY) -m metering_analytics.cli setup
	rm -f $(VENV)/.installed-* && touch $@

demo: setup
	$(PY) -m metering_analytics.cli demo --data $(DEMO_DATA) --lakehouse $(DEMO_LAKEHOUSE) \
		--subscriptions $(DEMO_SUBS) --days $(DEMO_DAYS)

# Two workers, one SparkSession each; a module's tests stay on one worker (its fixtures are built once).
TEST_WORKERS ?= 2

test: setup
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope -m "not reliability"

# Crash recovery (runs killed with SIGKILL inside bronze, silver and gold writes; silver batches stopped after
# each write, then re-run) and incremental billing + gold equal to a full rebuild: about 15 minutes, kept out
# of `make test` to hold it under 15 minutes.
test-reliability: setup
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope -m reliability

bench: setup
	$(PY) benchmarks/run.py

clean:
	rm -rf $(DEMO_LAKEHOUSE) $(DEMO_DATA) dashboards_out .pytest_cache
