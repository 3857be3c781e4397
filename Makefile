# Entry points: `make run` runs the whole study, `make test` runs the tests.
# Both create .venv when it is missing, install requirements.txt into it and
# provision MNIST under data/, so a fresh machine with Python 3.11 needs
# nothing else.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed-requirements.txt
OUTPUT ?= output

.PHONY: setup data run test clean

setup: $(INSTALLED)

# Reinstall only when requirements.txt changes; the copy records what is in.
$(INSTALLED): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	cp requirements.txt $(INSTALLED)

data: setup
	$(PY) data/prepare.py

run: data
	$(PY) run_study.py --output $(OUTPUT)

test: data
	$(PY) -m pytest tests

clean:
	rm -rf $(OUTPUT) .pytest_cache
