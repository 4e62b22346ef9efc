# Developer and CI entry points.  Override variables on the command line, e.g.
#   make test PYTHON=.venv-pymongo-4.6/bin/python PYTEST_ARGS="tests/plugins -x"

# The project venv, created and filled from setup.cfg on first use (and again when it changes).
VENV ?= .venv
BASE_PYTHON ?= python3
PYTHON ?= $(VENV)/bin/python
# Extra pytest arguments (paths, -k, -x, ...).
PYTEST_ARGS ?=

.PHONY: test lint demo bench venv

$(VENV)/.installed: setup.cfg setup.py pyproject.toml
	test -x $(VENV)/bin/python || $(BASE_PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -e '.[all,test]'
	touch $@

venv: $(VENV)/.installed

test: $(if $(filter $(VENV)/bin/python,$(PYTHON)),$(VENV)/.installed)
	$(PYTHON) -m pytest -q $(PYTEST_ARGS)

lint: $(if $(filter $(VENV)/bin/python,$(PYTHON)),$(VENV)/.installed)
	$(PYTHON) -m ruff check .

demo: $(if $(filter $(VENV)/bin/python,$(PYTHON)),$(VENV)/.installed)
	$(PYTHON) examples/demo.py

bench: $(if $(filter $(VENV)/bin/python,$(PYTHON)),$(VENV)/.installed)
	$(PYTHON) -m benchmarks
