# Two commands do all the set-up on a fresh machine:  `make demo`  and  `make test`.
# Each creates the virtual environment it needs (.venv) on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export SMARTSYNC_HOME ?= $(CURDIR)/.smartsync
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: demo test soak bench lint ui venv clean chromium

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@# Bytecode as a regular install has it (an editable install leaves it to the first import, which
	@# this machine's PYTHONDONTWRITEBYTECODE turns into every import: ~0.1 s of each CLI start).
	$(BIN)/python -m compileall -q smartsync_pipeline
	@# dagster-postgres must match dagster exactly; fail loudly if pip picked anything else.
	$(BIN)/python -c "import importlib.metadata as m; v={p: m.version(p) for p in ('dagster','dagster-webserver','dagster-postgres','dagster-celery')}; assert v=={'dagster':'1.13.27','dagster-webserver':'1.13.27','dagster-postgres':'0.29.27','dagster-celery':'0.29.27'}, v; print('dagster family:', v)"
	touch $@

# The instance file: the repo's dagster.yaml, plus Postgres storage when SMARTSYNC_PG_URL is set.
$(DAGSTER_HOME)/dagster.yaml: dagster.yaml $(VENV)/.installed
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/smartsync instance init --force

demo: venv $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/smartsync demo

test: venv
	$(BIN)/pytest

soak: venv $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/pytest -m soak -p no:cacheprovider -s -n 0

ui: venv $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/smartsync ui

# The browser tests drive Debian's Chromium through Playwright (no browser download). Tests never install
# it: outside CI they skip naming this target; .ci/run calls it.
chromium:
	@echo "Installing Debian's 'chromium' package with apt-get (needs root) for the browser tests."
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .smartsync .dagster_home
