# llamaport: the two Quickstart commands are `make demo` and `make test`.
# Each creates .venv on its own; llama-cpp-python compiles from source the
# first time (about 10 minutes on 2 cores), then pip's wheel cache serves it.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PKGS   := -p llamaport.storage -p llamaport.runtime -p llamaport.compat -p llamaport.integrations
DEMO_PROMPT ?= Why is the sky blue? Answer in one sentence.

.PHONY: demo test lint typecheck unit bench soak clean system-deps

# llama.cpp's AMX matrix multiply (ggml_backend_amx_mul_mat) segfaults on the
# AMX-capable Xeons these machines have, so x86-64 builds leave AMX out and keep
# every other extension -march=native finds. pip's wheel cache does not key on
# CMAKE_ARGS: after changing them, run `pip cache remove llama_cpp_python`.
ifeq ($(shell uname -m),x86_64)
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
export CMAKE_ARGS ?= -DCMAKE_C_FLAGS='$(NO_AMX)' -DCMAKE_CXX_FLAGS='$(NO_AMX)'
endif

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
# (apache2-utils) writes the bcrypt file of its basic-auth variant; chromium
# and chromium-driver run the chat page's browser tests (tests/compat/test_ui.py).
system-deps:
	@command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }
	@command -v docker-registry >/dev/null || test -x /usr/bin/docker-registry || \
		{ apt-get update -qq && apt-get install -y -qq docker-registry; }
	@command -v htpasswd >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq apache2-utils; }
	@{ command -v chromium && command -v chromedriver; } >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }

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
# ~/.cache/llamaport-bench (once), then measures all three, the proxy hop and
# the routing policies (simulated); never part of `test`.
bench: $(VENV)/.installed-test
	$(BIN)/pip install --quiet -e ".[test,bench]"
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/bench_proxy.py
	$(BIN)/python benchmarks/route_sim.py

# Mixed traffic from 16 clients against one server; SOAK_SECONDS (default 600).
soak: $(VENV)/.installed-test
	$(BIN)/python benchmarks/soak.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
