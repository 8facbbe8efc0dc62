# medsyn: `make demo` sets everything up and runs the main job; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: setup demo test lint format bench space clean

setup: $(VENV)/.installed

# torch first, so that no dependency picks another build. The default, torch==2.13.0, is a CPU build that the
# reference CPU machines install from local disk. On a machine with a GPU pass the build that suits it, e.g.
#   make demo TORCH="torch --index-url https://download.pytorch.org/whl/cu128"   (CUDA 12.8)
#   make demo TORCH=torch                                                        (PyPI's default build)
TORCH ?= torch==2.13.0

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[all]"
	touch $@

demo: setup
	$(BIN)/medsyn kg build
	$(BIN)/medsyn kg show M54 --plot outputs/kg-M54.png
	$(BIN)/medsyn kg stats --plot outputs/kg-stats.png
	$(BIN)/medsyn generate --config recipes/gemma-270m/generate.yaml
	$(BIN)/python scripts/show_notes.py outputs/ru-notes --n 3

test: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

lint: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q tests/test_layers.py
	$(BIN)/ruff check medsyn scripts tests benchmarks spaces
	$(BIN)/ruff format --check medsyn scripts tests benchmarks spaces

format: setup
	$(BIN)/ruff check --fix medsyn scripts tests benchmarks spaces
	$(BIN)/ruff format medsyn scripts tests benchmarks spaces

# The Gradio Space on http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT to change it).
space: setup
	GRADIO_ANALYTICS_ENABLED=False $(BIN)/python spaces/medsyn-demo/app.py

bench: setup
	$(BIN)/python benchmarks/generate_cpu.py
	$(BIN)/python benchmarks/generate_served.py
	$(BIN)/python benchmarks/fleet_clients.py

clean:
	rm -rf $(VENV) outputs runs .pytest_cache
