# aml-autopilot: everything installs itself (Python venv + npm), nothing is assumed on the machine
# beyond Python 3.11 and Node 20.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# checkov pins its own dependencies (some clash with the Azure SDKs): it lives in a venv of its own.
CHECKOV_VENV := .venv-checkov
PYTEST_ARGS ?=

CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install demo test unit fuzz bench lint checkov clean

install: $(VENV)/.installed local/node_modules/.installed $(CHECKOV_VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

checkov: $(CHECKOV_VENV)/.installed
	BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov -d infra --framework terraform --skip-download --compact --quiet

local/node_modules/.installed: local/package.json local/package-lock.json
	npm --prefix local ci --no-audit --no-fund --loglevel=error
	touch $@

demo: install
	$(PY) -m local.demo

# The report's page is tested in a real headless Chromium: Debian's package (playwright drives it; it downloads no browser).
$(CHROMIUM):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

test: install $(CHROMIUM)
	@$(PY) -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: no tests were collected"; fi; exit $$rc

unit: install
	$(PY) -m pytest -q tests/unit

fuzz: install
	$(PY) -m tests.fuzz

bench: install
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf .local-run .pytest_cache .ruff_cache
