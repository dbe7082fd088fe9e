# The two commands of README.md. Everything else here serves them.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench clean lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

## run: set up and start telmon with its demo feed on http://127.0.0.1:8321
run: $(STAMP)
	$(VENV)/bin/telmon serve --demo

## test: set up and run the whole test suite
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/arrivals.py

clean:
	rm -rf $(VENV) build *.egg-info
