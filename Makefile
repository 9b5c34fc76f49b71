# Two commands: `make run` serves the demo, `make test` runs the suite. Each sets itself up
# (virtualenv, dependencies, database) on a machine with only Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# Optional: a real labelled file (e.g. Kaggle's creditcard.csv) for the first model.
CSV ?=

.PHONY: run test lint check clean fuzz

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 not found: install it, or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-run: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py ensure_model $(if $(CSV),--csv $(CSV))
	$(BIN)/python manage.py ensure_demo_user
	VENV=$(VENV) scripts/serve.sh

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

check: lint
	$(BIN)/python manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var

# Every fuzz target for SECONDS each; findings are written under var/fuzz/.
SECONDS ?= 60
fuzz: $(VENV)/.installed-dev
	$(BIN)/python -m fuzz --seconds $(SECONDS)
