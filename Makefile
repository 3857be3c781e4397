# Entry points: `make run` runs the whole study, `make test` runs the tests.
# Both create .venv when it is missing, install requirements.txt into it and
# provision MNIST under data/, so a fresh machine with Python 3.11 needs
# nothing else.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed-requirements.txt
OUTPUT ?= output

.PHONY: setup data run run-notebook test clean release grade

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

# The same study through the notebook, in one kernel, as a student runs it.
run-notebook: data
	$(PY) run_study.py --runner notebook --output $(OUTPUT)

test: data
	$(PY) -m pytest tests

# The nbgrader course lives in autograder/; see README.md, "Instructors".
# nbgrader runs the alembic command of its environment, hence the PATH.
NBGRADER := cd autograder && PATH="$(abspath $(VENV))/bin:$$PATH" ../$(VENV)/bin/nbgrader

release: data
	$(PY) autograder/build.py
	$(NBGRADER) generate_assignment momentum --force

# make grade FROM=export.zip also collects a folder or zip of notebooks.
grade: data
	$(PY) autograder/grade.py $(if $(FROM),--from "$(abspath $(FROM))")

clean:
	rm -rf $(OUTPUT) .pytest_cache
