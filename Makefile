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
  # The assets' model is a re-export whose SHA-256 differs from the official manifest's: it runs,
  # reported as not verified. Elsewhere (downloads, the image) a mismatch is refused.
  EDGEVISION_MODEL__VERIFY ?= warn
  export EDGEVISION_MODEL__VERIFY
endif

# The main job's camera: the pedestrians clip from the assets, played in real time (or SOURCE=URI).
SOURCE ?= $(wildcard $(EDGEVISION_ASSETS)/video/pedestrians-720p.avi)
# Each `make run` writes a new results file (its path printed before and after the run); a
# `jsonl:PATH` sink of your own (RUN_ARGS, --sink, the configuration) appends to PATH instead.
ifndef RESULTS
  RESULTS := out/results-$(shell date +%Y%m%d-%H%M%S).jsonl
endif
RUN_ARGS ?= --sink jsonl:$(RESULTS) --metrics-interval 5

# The image. `make image` builds the production one (its CUDA base comes from a registry) with
# docker, or podman where there is no docker; `make image-test` builds the same Dockerfile on a
# base made here (debootstrap: no registry needed) and runs the container tests against it.
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' module/edgevision/__init__.py)
IMAGE ?= edgevision:$(VERSION)
# docker only where its engine answers (a docker client alone is common on CI runners).
CONTAINER ?= $(shell docker info >/dev/null 2>&1 && echo docker || echo podman)
# What podman needs on machines like CI's: crun refuses the kernel's hybrid cgroup layout, and
# the default container limits exceed the hard ones (set it empty where podman works as it is).
# Not module settings: the container tests add them to every run too.
PODMAN_FLAGS ?= --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=4096:4096
TEST_BASE ?= localhost/edgevision-base:bookworm
TEST_IMAGE ?= localhost/edgevision:test
# Builds reach the package registries through the host's network; where its CA bundle holds a
# proxy's certificate, the build needs it to verify TLS.
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
TEST_BUILD_FLAGS := --network host $(if $(wildcard $(CA_BUNDLE)),-v $(CA_BUNDLE):/etc/ssl/certs/ca-certificates.crt:ro)

.PHONY: help venv model run test test-fast lint test-deps cuda-libs azurite gpu constraints clean image image-deps image-test check-exporters

help:
	@echo "make run        set up, fetch the model, and run the main job"
	@echo "make test       set up and run the whole test suite (lint, unit and integration tiers)"
	@echo "make test-fast  the unit tier only (stand-ins at the seams; under a minute)"
	@echo "make image      build the container image (docker, else podman)"
	@echo "make image-test build it on a locally made base and run the container tests (root, podman)"
	@echo "make check-exporters  export Ultralytics models (random weights) and check the recogniser reads them"

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

# With no SOURCE (no assets here), `edgevision run` plays its pinned public sample clip.
run: model
	$(BIN)/edgevision gpu
	@echo "results and metrics go to $(RESULTS)"
	$(BIN)/edgevision run $(if $(SOURCE),--source $(SOURCE)) --model $(MODEL) $(RUN_ARGS)
	@echo "results and metrics: $(RESULTS)"

# System packages the tests need: a C compiler (fake driver libraries), mosquitto (local edgeHub),
# kubectl (kustomize) and npm (Azurite).
test-deps:
	@missing=""; command -v cc >/dev/null 2>&1 || missing="$$missing gcc libc6-dev"; \
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v kubectl >/dev/null 2>&1 || missing="$$missing kubernetes-client"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else echo "the tests need:$$missing (install them, e.g. sudo apt-get install$$missing)" >&2; exit 2; fi; \
	fi

lint: venv
	$(BIN)/ruff check module tests benchmarks
	$(BIN)/ruff format --check module tests benchmarks

test-fast: venv
	$(BIN)/python -m pytest tests/unit -n $(shell nproc 2>/dev/null || echo 2) $(PYTEST_ARGS)

# Azurite (the Azure Storage emulator, from npm at the version the lock file pins) for the
# evidence upload tests, as mosquitto is the local edgeHub.
AZURITE := .cache/azurite
export AZURITE_BIN := $(abspath $(AZURITE))/node_modules/.bin/azurite-blob
$(AZURITE)/.installed: tests/support/azurite/package.json tests/support/azurite/package-lock.json
	mkdir -p $(AZURITE)
	cp tests/support/azurite/package.json tests/support/azurite/package-lock.json $(AZURITE)/
	cd $(AZURITE) && npm ci --no-audit --no-fund --silent
	touch $@

azurite: $(AZURITE)/.installed

$(CUDA_LIBS)/.installed: tests/cuda13-libraries.txt | venv
	$(BIN)/python -m pip install --quiet --target $(CUDA_LIBS) -r tests/cuda13-libraries.txt
	touch $@

cuda-libs: $(CUDA_LIBS)/.installed

test: lint test-deps cuda-libs azurite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

image:
ifeq ($(notdir $(CONTAINER)),podman)
	podman build --format docker $(PODMAN_FLAGS) $(IMAGE_BUILD_ARGS) -t $(IMAGE) .
else
	$(CONTAINER) build $(IMAGE_BUILD_ARGS) -t $(IMAGE) .
endif

# The container runtime and what makes the local base (Debian packages; root installs them).
image-deps:
	@missing=""; for tool in podman:podman runc:runc debootstrap:debootstrap newuidmap:uidmap catatonit:catatonit; do \
		command -v $${tool%%:*} >/dev/null 2>&1 || [ -x /usr/sbin/$${tool%%:*} ] || missing="$$missing $${tool##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else echo "make image-test needs:$$missing (and root, for debootstrap)" >&2; exit 2; fi; \
	fi

# The production Dockerfile with only its base images swapped for the local one, and no model
# baked in (no download here: the tests mount the assets' model read-only at /models).
image-test: venv test-deps image-deps
	tests/container/make-local-base.sh $(TEST_BASE) podman
	@mkdir -p .cache; start=$$(date +%s); \
	podman build --format docker $(PODMAN_FLAGS) $(TEST_BUILD_FLAGS) \
		--build-arg BUILD_BASE=$(TEST_BASE) --build-arg RUNTIME_BASE=$(TEST_BASE) \
		--build-arg SKIP_MODEL_DOWNLOAD=1 -t $(TEST_IMAGE) . >.cache/image-build.log 2>&1 \
		|| { tail -n 40 .cache/image-build.log >&2; exit 1; }; \
	echo "$(TEST_IMAGE): built in $$(( $$(date +%s) - start )) s, $$(podman image inspect --format '{{.Size}}' $(TEST_IMAGE) | numfmt --to=si) bytes (log: .cache/image-build.log)"
	EDGEVISION_TEST_IMAGE=$(TEST_IMAGE) EDGEVISION_CONTAINER_FLAGS="$(PODMAN_FLAGS)" \
		$(BIN)/python -m pytest tests/container $(PYTEST_ARGS)

# Real Ultralytics exports for the recogniser, outside CI: torch and ultralytics in their own
# environment (torch from this machine's wheel cache where there is one; several GB elsewhere).
EXPORTERS := .cache/exporters
$(EXPORTERS)/.installed:
	$(PYTHON) -m venv $(EXPORTERS)
	$(EXPORTERS)/bin/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1 ultralytics==8.4.190 \
		'onnx>=1.17,<1.24' 'onnxslim>=0.1.82' onnxruntime
	touch $@

check-exporters: venv $(EXPORTERS)/.installed
	cd .cache && ../$(EXPORTERS)/bin/python ../tests/exporters/export_ultralytics.py exports
	$(BIN)/python tests/exporters/inspect_exports.py .cache/exports benchmarks/results/exporters-ultralytics.md
	@echo "record: benchmarks/results/exporters-ultralytics.md"

constraints: venv
	{ echo "# Exact versions \`make\` installs (tested together); regenerate with \`make constraints\`."; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^edgevision'; } > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache $(CUDA_LIBS)
