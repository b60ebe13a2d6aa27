# Two entry points for users: `make demo` and `make test`. Everything else here is plumbing.
# Each sets up .venv on first use (idempotent: a stamp file records what was installed) and then
# does its job. Run either twice and nothing is reinstalled.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.reshoot-installed
# The CPU build of torch. On this project's machines the wheel of 2.13.0 is on disk; any newer range
# would pull several GB of CUDA packages. Machines with an NVIDIA driver get the default (CUDA) build.
TORCH_CPU ?= torch==2.13.0
TORCH_CUDA ?= torch
DEMO_OUT ?= demo

.PHONY: demo test setup splats-kernel browser

# `reshoot run` does every stage that is out of date (all of them the first time; a second `make demo`
# redoes nothing: the take is made once) and exits 1 when the shot's check fails.
demo: $(STAMP) splats-kernel
	@test -f $(DEMO_OUT)/take/take.json || $(VENV)/bin/reshoot synth $(DEMO_OUT)/take --overwrite
	$(VENV)/bin/reshoot init $(DEMO_OUT)/workspace --footage $(DEMO_OUT)/take/footage \
	  --survey $(DEMO_OUT)/take/survey --force --set register.camera_height=1.6
	$(VENV)/bin/reshoot run $(DEMO_OUT)/workspace --shot "overhead=overhead wide" || \
	  echo "reshoot demo: the check flags problems in the overhead shot (exit 1); see the report"
	$(VENV)/bin/reshoot export $(DEMO_OUT)/workspace overhead --overwrite
	@echo "reshoot demo: synthetic take in $(DEMO_OUT)/take (footage/ as shot, gt/ ground truth),"
	@echo "              workspace in $(DEMO_OUT)/workspace: cameras in registration/, splats in splats/,"
	@echo "              layout.json + layout_plan.png, the overhead shot in shots/overhead/ (conditioning/preview.mp4,"
	@echo "              frames/ and overhead.mp4 made by the tiny video model in model/weights/tiny; the VFX"
	@echo "              deliverable exr/overhead.NNNN.exr and the timeline overhead.otio + overhead.edl),"
	@echo "              its check.json, and the continuity report in $(DEMO_OUT)/workspace/report/index.html;"
	@echo "              look around it in 3D: .venv/bin/reshoot view $(DEMO_OUT)/workspace --shot overhead"

test: $(STAMP) splats-kernel browser
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) scripts/typecheck.py
	$(PY) -m pytest -q

setup: $(STAMP) splats-kernel

# Debian's chromium, for the test that opens `reshoot report`'s page headless. Without apt (or root) the
# test says so and skips; nothing else needs a browser.
browser:
	@command -v chromium >/dev/null 2>&1 || bash scripts/ensure_system_deps.sh --browser || \
	  echo "reshoot: WARNING: chromium is missing; the report's browser test will skip"

# The C++/OpenMP CPU splat kernels (geometry/splats/csrc: rasterizer, fused projection), compiled once
# (about 15 s) into build/splats_cpu/ and again only when their sources, flags or torch change; otherwise
# this takes a second. A failed build warns and does not stop make: CPU splat rendering then falls back
# to the pure-torch twins.
splats-kernel: $(STAMP)
	@$(PY) -m reshoot.geometry.splats.build || \
	  echo "reshoot: WARNING: continuing without the C++ CPU rasterizer (slow pure-torch fallback)"

# --no-compile: pip would byte-compile every module of every package (torch alone: 30 s of its 36 s
# install here); scripts/warm_bytecode.py then writes the .pyc of what reshoot and its tests import
# (about 9 s), so that they load fast even where PYTHONDONTWRITEBYTECODE is set.
$(STAMP): pyproject.toml scripts/ensure_system_deps.sh
	@bash scripts/ensure_system_deps.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || \
	  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
	    echo "reshoot: NVIDIA GPU found, installing the CUDA build of torch"; \
	    $(PY) -m pip install -q --no-compile "$(TORCH_CUDA)"; \
	  else \
	    echo "reshoot: no NVIDIA GPU, installing the CPU build of torch ($(TORCH_CPU))"; \
	    $(PY) -m pip install -q --no-compile "$(TORCH_CPU)"; \
	  fi
	$(PY) -m pip install -q --no-compile "setuptools>=68" wheel
	$(PY) -m pip install -q --no-compile -e ".[dev,engines,ray,openjd]"
	@PYTHONDONTWRITEBYTECODE= $(PY) scripts/warm_bytecode.py
	@touch $(STAMP)
