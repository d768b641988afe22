# mmfast's development commands (CONTRIBUTING.md). `make` or `make help` lists them.
# PY: the Python of the development venv (README: .venv); tools run from beside it.
PY ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)
BIN := $(abspath $(dir $(PY)))
# cython-lint and pre-commit call their helpers (pycodestyle, ...) by name: the venv's first.
export PATH := $(BIN):$(PATH)

# The compiled modules, one per source: a module added to cython_src is linted, stub-tested and
# covered without editing this file.
MODULES := $(sort $(basename $(notdir $(wildcard cython_src/mmfast/_core/*.pyx))))
CORE := cython_src/mmfast/_core
# Which flavour the in-place extensions are (release, debug): setuptools only compares file
# times, so a switch of flavour must force the rebuild or it keeps the other flavour's modules.
FLAVOUR := build/inplace-flavour
TESTS ?= tests/unit
JOBS ?= 2

.DEFAULT_GOAL := help
.PHONY: help build debug annotate test soak bench lint typecheck cov lock sdist wheel

help: ## this list
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# $(1): the flavour, $(2): the build's environment variables.
define inplace
	@mkdir -p build
	$(2) $(PY) setup.py -q build_ext --inplace --parallel $(JOBS) \
	    $$(test "$$(cat $(FLAVOUR) 2>/dev/null)" = $(1) || echo --force)
	@echo $(1) > $(FLAVOUR)
endef

build: ## compile the release extensions in place (mmfast/_core/*.so)
	$(call inplace,release,)

debug: ## compile the checked debug build in place: bounds checks, line tracing, -O0 -g
	$(call inplace,debug,MMFAST_DEBUG_BUILD=1)

annotate: ## the release build plus Cython's HTML annotation of every module
	@mkdir -p build
	MMFAST_ANNOTATE=1 $(PY) setup.py -q build_ext --inplace --parallel $(JOBS) --force
	@echo release > $(FLAVOUR)
	@ls build/cython/$(CORE)/*.html

test: ## unit and integration tests (the README's pytest; soaks deselected)
	$(PY) -m pytest

soak: ## the long soaks and full fault counts
	$(PY) -m pytest -m soak

bench: ## the benchmark suite (BENCH_ARGS=--quick for the short one)
	$(PY) -m bench $(BENCH_ARGS)

lint: ## ruff over the Python tree, cython-lint over cython_src
	$(PY) -m ruff check .
	$(BIN)/cython-lint cython_src

# tests/typing: the public API used as a user would, its types pinned (assert_type) and its
# misuses marked (type: ignore[code], an ignore no longer needed is an error); mypy only.
typecheck: ## mypy over mmfast/ and tests/typing, stubtest of every compiled module (both run)
	status=0; $(PY) -m mypy mmfast tests/typing || status=$$?; \
	$(PY) -m mypy.stubtest --allowlist tools/stubtest-allowlist.txt \
	    $(addprefix mmfast._core.,$(MODULES)) || status=$$?; \
	exit $$status

# The traced build's C files go beside the .pyx while the tests run: Cython's coverage plugin
# looks for a module's C file next to the source its trace names (cython_src/.../x.pyx).
cov: ## unit tests (TESTS=...) with Python and Cython line coverage, then the release build back
	$(MAKE) debug
	cp build/cython-debug/$(CORE)/*.c $(CORE)/
	rm -rf build/coverage; status=0; \
	$(PY) -m pytest -p no:cacheprovider --cov --cov-report=term \
	    --cov-report=html:build/coverage/html $(TESTS) || status=$$?; \
	$(PY) -m coverage report --show-missing --include='cython_src/*' || status=$$?; \
	rm -f $(CORE)/*.c; $(MAKE) build && exit $$status
	@echo "html report: build/coverage/html/index.html"

# Python 3.11 on linux x86_64 (the supported platform); every file's hash, so CI installs with
# --require-hashes. ccxt goes in its own file: it installs without its dependencies
# (tests/requirements-ccxt.txt says why), so it cannot share the resolution.
lock: ## refresh requirements/lock.txt and requirements/ccxt.txt (uv pip compile, hashed)
	$(PY) -m uv pip compile pyproject.toml --extra test --extra dev --generate-hashes \
	    --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	    --custom-compile-command "make lock" -o requirements/lock.txt
	$(PY) -m uv pip compile tests/requirements-ccxt.txt --no-deps --generate-hashes \
	    --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	    --custom-compile-command "make lock" -o requirements/ccxt.txt

sdist: ## the source distribution in dist/, checked against the tracked tree
	$(PY) -m build --sdist --no-isolation -o dist .
	$(PY) tools/check_sdist.py $$(ls -t dist/mmfast-*.tar.gz | head -1)

wheel: ## the wheel in dist/ (deploy/build-wheel.sh), checked
	PY=$(PY) sh deploy/build-wheel.sh dist
	$(PY) tools/check_wheel.py $$(ls -t dist/mmfast-*.whl | head -1)
