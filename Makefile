# llamaport: the two Quickstart commands are `make demo` and `make test`.
# Each creates .venv on its own; llama-cpp-python compiles from source the
# first time (about 10 minutes on 2 cores), then pip's wheel cache serves it.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PKGS   := -p llamaport.storage -p llamaport.runtime -p llamaport.compat -p llamaport.integrations
DEMO_PROMPT ?= Why is the sky blue? Answer in one sentence.

.PHONY: demo test lint typecheck unit bench clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e ".[test]"
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/llamaport run smollm2:135m "$(DEMO_PROMPT)"

# Packages the test suite needs from the system (Debian names).
# docker-registry (distribution 2.8) serves the pull/push tests; htpasswd
# (apache2-utils) writes the bcrypt file of its basic-auth variant.
system-deps:
	@command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }
	@command -v docker-registry >/dev/null || test -x /usr/bin/docker-registry || \
		{ apt-get update -qq && apt-get install -y -qq docker-registry; }
	@command -v htpasswd >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq apache2-utils; }

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy cannot follow setuptools' editable-install import hook, so it reads the
# package through a symlink that maps llamaport/ onto the repository root.
typecheck: $(VENV)/.installed-test
	@mkdir -p build/typecheck && ln -sfn ../.. build/typecheck/llamaport
	MYPYPATH=build/typecheck $(BIN)/mypy $(PKGS)

test: $(VENV)/.installed-test system-deps lint typecheck
	$(BIN)/python -m pytest

# Builds llama-server, llama-bench and a llama_cpp.server venv under
# ~/.cache/llamaport-bench (once), then measures all three; never part of `test`.
bench: $(VENV)/.installed-test
	$(BIN)/pip install --quiet -e ".[test,bench]"
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
