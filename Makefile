# Two entry points do all the set-up on a fresh machine (see README.md):
#   make demo   installs, then runs the main job end to end on the bundled CDNOW sample
#   make test   installs, then runs the linters and the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN ?= runs/demo
# The demo's MLflow store (tests make their own, in temporary folders).
demo: export MLFLOW_TRACKING_URI ?= sqlite:///$(abspath $(RUN))/mlflow.db

.PHONY: install demo test lint

$(BIN)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==0.13.8
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

install: $(BIN)/.installed

CDNOW := features/data/cdnow_master.csv.gz

# The main job end to end on the bundled sample: features, training (tracked in MLflow and
# promoted to champion if it beats the BG/NBD + Gamma-Gamma baseline), batch scoring of every
# customer as of the last day of the log, and the analysts' report.
demo: install
	mkdir -p $(RUN)
	$(BIN)/clv features --transactions $(CDNOW) --timestamp-col date \
		--cutoff 1997-09-30 --horizon-days 273 --output $(RUN)/features.parquet
	$(BIN)/clv train --transactions $(CDNOW) --timestamp-col date \
		--cutoff 1997-09-30 --horizon-days 273 --evaluation customer-holdout \
		--promote --metrics-out $(RUN)/metrics.json
	$(BIN)/clv score --transactions $(CDNOW) --timestamp-col date \
		--as-of 1998-06-30 --output $(RUN)/scores.parquet
	$(BIN)/clv report --transactions $(CDNOW) --timestamp-col date \
		--as-of 1998-06-30 --output $(RUN)/report.html
	@echo "outputs in $(RUN)/; browse runs with: $(BIN)/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI)"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy features models training serving reports cli

test: lint
	$(BIN)/pytest
	$(BIN)/pytest --nbmake notebooks/
