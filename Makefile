# Developer and CI entry points.  Override variables on the command line, e.g.
#   make test PYTHON=.venv-pymongo-4.6/bin/python PYTEST_ARGS="tests/plugins -x"

# The project venv's python when there is one, else python3.
PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)
# Extra pytest arguments (paths, -k, -x, ...).
PYTEST_ARGS ?=

.PHONY: test lint demo bench

test:
	$(PYTHON) -m pytest -q $(PYTEST_ARGS)

lint:
	$(PYTHON) -m ruff check .

demo:
	$(PYTHON) examples/demo.py

bench:
	$(PYTHON) -m benchmarks
