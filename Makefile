# Two entry points: `make run` (set up, get the model, run the main job) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
MODEL ?= yolox-nano

# Test assets (model, images, videos) live beside the repo on the team's machines.
ifndef EDGEVISION_ASSETS
  ifneq ($(wildcard ../shared/assets),)
    EDGEVISION_ASSETS := $(abspath ../shared/assets)
  endif
endif
export EDGEVISION_ASSETS
# CUDA 13 runtime libraries for the tests of the real CUDA provider (a stand-in driver decides
# what the GPU answers): see tests/cuda13-libraries.txt.
CUDA_LIBS := .cache/cuda13
export EDGEVISION_CUDA_LIBS := $(abspath $(CUDA_LIBS))

# Where the assets carry the model, use it instead of downloading.
ifneq ($(wildcard $(EDGEVISION_ASSETS)/models),)
  EDGEVISION_MODEL_DIR ?= $(abspath $(EDGEVISION_ASSETS)/models)
  export EDGEVISION_MODEL_DIR
endif

# The main job's camera: the pedestrians clip from the assets, played in real time.
SOURCE ?= $(wildcard $(EDGEVISION_ASSETS)/video/pedestrians-720p.avi)
RUN_ARGS ?= --sink jsonl:out/results.jsonl --metrics-interval 5

.PHONY: help venv model run test test-fast lint test-deps cuda-libs gpu constraints clean

help:
	@echo "make run        set up, fetch the model, and run the main job"
	@echo "make test       set up and run the whole test suite (lint, unit and integration tiers)"
	@echo "make test-fast  the unit tier only (stand-ins at the seams; under a minute)"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

venv: $(STAMP)

model: venv
	$(BIN)/edgevision models fetch $(MODEL)

gpu: venv
	$(BIN)/edgevision gpu

run: model
	$(BIN)/edgevision gpu
	@if [ -z "$(SOURCE)" ]; then echo "no camera: run 'make run SOURCE=rtsp://...' (or a video file)" >&2; exit 2; fi
	$(BIN)/edgevision run --source $(SOURCE) --model $(MODEL) $(RUN_ARGS)
	@echo "results and metrics: out/results.jsonl"

# System packages the tests need: a C compiler (fake driver libraries) and mosquitto (local edgeHub).
test-deps:
	@missing=""; command -v cc >/dev/null 2>&1 || missing="$$missing gcc libc6-dev"; \
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else echo "the tests need:$$missing (install them, e.g. sudo apt-get install$$missing)" >&2; exit 2; fi; \
	fi

lint: venv
	$(BIN)/ruff check module tests benchmarks
	$(BIN)/ruff format --check module tests benchmarks

test-fast: venv
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

$(CUDA_LIBS)/.installed: tests/cuda13-libraries.txt | venv
	$(BIN)/python -m pip install --quiet --target $(CUDA_LIBS) -r tests/cuda13-libraries.txt
	touch $@

cuda-libs: $(CUDA_LIBS)/.installed

test: lint test-deps cuda-libs
	$(BIN)/python -m pytest $(PYTEST_ARGS)

constraints: venv
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^edgevision' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache $(CUDA_LIBS)
