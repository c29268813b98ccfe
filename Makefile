# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv and install the package with its dev extra first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# An editable install; setuptools' note that folders named like the package may shadow it is
# silenced (those folders are the package: pyproject's package-dir maps them).
INSTALL := PYTHONWARNINGS="ignore:Editable installation:UserWarning" $(BIN)/pip install -q -e

.PHONY: demo test lint lit pytest fuzz bench zoo clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip "setuptools>=68" wheel
	$(INSTALL) '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/neuron-opt examples/mlp.mlir --auto-cast=matmult --auto-cast-type=bf16 --cast-report
	mkdir -p demo-output
	$(BIN)/neuron-cc sweep examples/transformer.onnx --inputs examples/transformer_inputs.npz \
		--plot demo-output/transformer_sweep.png --json demo-output/transformer_sweep.json

test: lint lit pytest

# ruff (lint, import order and format; `ruff check --fix . && ruff format .` fixes most) and
# pyright (types, over build/typeroot: tools/typeroot.py says why); config in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check --quiet .
	$(BIN)/ruff format --check --quiet .
	$(BIN)/python tools/typeroot.py build/typeroot
	$(BIN)/basedpyright --level error

lit: $(STAMP)
	$(BIN)/lit -v --order=smart tests/filecheck

# One pytest worker per core (pytest-xdist): the suite is CPU-bound.
pytest: $(STAMP)
	$(BIN)/pytest -n auto

fuzz: $(STAMP)
	NEURON_FUZZ_PROFILE=long NEURON_FUZZ_EXAMPLES=$(or $(N),10000) $(BIN)/pytest tests/fuzz -p no:cacheprovider \
		--hypothesis-show-statistics

# Benchmarks print figures and write JSON under bench/results/ (never part of `make test`).
bench: $(STAMP)
	$(BIN)/python bench/compile_speed.py --sizes 1000,10000
	$(BIN)/python bench/interpreter_speed.py
	$(BIN)/python bench/simulator_speed.py
	$(BIN)/python bench/gemm_figures.py
	$(BIN)/python bench/lowering_gemm.py
	$(BIN)/python bench/lowering_wide_mlp.py
	$(BIN)/python bench/lowering_broadcast.py
	$(BIN)/python bench/lowering_conv.py
	$(BIN)/python bench/lowering_sizes.py
	$(BIN)/python bench/zoo_status.py
	$(BIN)/python bench/deep_chain.py --ops 100000

# The model zoo at realistic sizes (BERT-base, GPT-2 small, ResNet-50 at 224, a 4096-wide MLP
# at batch 512, ...) into zoo-out/ (gitignored, a few GB); the tiny zoo is committed in
# examples/zoo. Installs the zoo extra (torch 2.13.0 CPU, transformers, onnxscript).
zoo: $(STAMP)
	$(INSTALL) '.[dev,zoo]'
	$(BIN)/python examples/zoo/make_zoo.py --real --out zoo-out

clean:
	rm -rf $(VENV) build *.egg-info
