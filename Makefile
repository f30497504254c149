# One-command entry points. Every target creates the venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export MUJOCO_GL ?= egl

.PHONY: setup test test-all lint format bench-envs bench-data bench-model quickstart

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# The stamp re-runs the install when pyproject.toml or constraints.txt change.
$(VENV)/.installed: $(BIN)/activate pyproject.toml constraints.txt
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

test-all: setup
	$(BIN)/pytest -q -m "slow or not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench-envs: setup
	$(BIN)/python benchmarks/envs.py

bench-data: setup
	$(BIN)/python benchmarks/data.py

bench-model: setup
	$(BIN)/python benchmarks/model.py

# The main job: collect -> train -> evaluate on the touch task, all under runs/quickstart/.
QS := runs/quickstart
quickstart: setup
	$(BIN)/vla-collect env=touch env.image_size=64 'env.cameras=[front,top]' episodes=3000 noise=0.1 workers=2 out=$(QS)/data/touch_front_top.zarr
	$(BIN)/vla-train experiment=quickstart
	$(BIN)/vla-eval checkpoint=$(QS)/train/checkpoints/last env=touch env.image_size=64 'env.cameras=[front,top]' split=train episodes=50 out=$(QS)/eval
	$(BIN)/vla-eval checkpoint=$(QS)/train/checkpoints/last env=touch env.image_size=64 'env.cameras=[front,top]' split=test episodes=50 out=$(QS)/eval_test
