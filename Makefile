# The README's two commands:
#   make demo   trains and evaluates the default methods on the synthetic long-tailed
#               benchmark and prints the results table (sets up .venv when missing)
#   make test   runs the test suite (sets up .venv when missing)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= work_dirs/demo
DEMO_CONFIGS ?= $(shell cat configs/demo_configs.txt | grep -v '^\#')
DEMO_SEEDS ?= 0
DEMO_JOBS ?= 2
PYTEST_ARGS ?=

.PHONY: setup setup-tests demo test clean-venv

setup:
	@bash tools/setup_env.sh

setup-tests:
	@bash tools/setup_env.sh tests

demo: setup
	$(PY) tools/lt_benchmark.py --configs $(DEMO_CONFIGS) --seeds $(DEMO_SEEDS) --jobs $(DEMO_JOBS) --out $(DEMO_OUT)

test: setup-tests
	$(PY) -m pytest tests -q -rs $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
