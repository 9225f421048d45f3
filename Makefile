# Two entry points, both doing all set-up on a fresh machine (see README.md):
#   make demo   install, then run spray on the built-in demo and print the report's path
#   make test   install (with the test extras and Debian packages), then lint (ruff), type-check
#               (mypy) and run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.spray-installed

.PHONY: demo test install lint

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch==2.13.0 exactly: the local CPU build (a bare "torch" pulls a multi-GB CUDA build).
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/spray run --class aeroplane

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	bash scripts/install-system-packages.sh
	# pytest exits 5 when it collects no test; that is not a failure of the suite.
	$(PY) -m pytest; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ] || exit $$rc
