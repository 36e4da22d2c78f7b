# The two commands a fresh machine needs: `make run` and `make test`. Everything else is set up from lock files.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export DXL_HOME ?= $(CURDIR)/.dxl

.PHONY: setup run test test-shuffled lint fmt bench reliability clean lock geth

# The Python and the npm installs side by side (each waits on the network part of the time), each one's output
# kept together.
setup:
	@$(MAKE) --no-print-directory -j2 --output-sync=target $(VENV)/.installed node_modules/.installed
	@scripts/install-chromium.sh

# uv installs the locked packages with the same hash check as pip (--require-hashes) in a tenth of the time on
# an empty cache (33 s against 330 s on a loaded 2-core machine); uv itself comes from its own hashed lock.
# uv also installs dxl itself (editable): 2 s against pip's 6 s. compat: the checkout on sys.path by a .pth line, not
# setuptools' import finder, which cost every dxl process 11 ms of start-up (python -X importtime: site 13.9 ms
# against 2.7 ms).
$(VENV)/.installed: requirements-dev.lock requirements-uv.lock pyproject.toml
	@command -v $(PY) >/dev/null || { echo "need $(PY) on PATH"; exit 2; }
	test -x $(BIN)/python || $(PY) -m venv --without-pip $(VENV)
	$(PY) -m pip --python $(BIN)/python install $(UV_INSTALL) 2>/dev/null \
		|| { $(BIN)/python -m ensurepip --default-pip >/dev/null && $(BIN)/pip install $(UV_INSTALL); }
	$(BIN)/uv pip install --quiet --require-hashes --python $(BIN)/python -r requirements-dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e . --config-settings editable_mode=compat & \
	$(BIN)/python -m compileall -q -j 0 -x '$(NOT_IMPORTED)' $(SITE_PACKAGES) node api verifier dxl tests scripts >/dev/null; \
	compiled=$$?; wait $$! && exit $$compiled
	$(BIN)/python scripts/test-bytecode.py tests
	touch $@

# uv into the new environment by the interpreter's own pip (22.3 and later install into another environment),
# without a pip of the environment's own: ensurepip's copy, used for nothing else, was 2.4 s of a fresh
# set-up's 14. A Python without pip, or with an older one, gets the environment's pip as before.
UV_INSTALL := --quiet --disable-pip-version-check --no-compile --require-hashes -r requirements-uv.lock

# Bytecode for every module the suite and the service import, compiled once on every core at set-up: left to
# the first import, the test workers and the processes tests start compiled the same modules at the
# same moment (some 30 s of CPU, and 10 s more before the first test ran on a fresh clone). Tools that run in
# their own processes (mypy, ruff, pip, uv), packages nothing here imports, and the parts of the others that no
# process of a full `make test` imported (the packages' own tests, playwright's async API, reportlab's charts
# and page layouts; a tenth of the source: each process's sys.modules listed at its exit) are left out; what
# is imported of them after all is compiled by its first importer, once. dxl's own install (editable: a path
# in a .pth file, no module) runs meanwhile. The test modules' assertion-rewritten bytecode likewise
# (scripts/test-bytecode.py): each worker rewrote every one of them.
SITE_PACKAGES = $(VENV)/lib/python3*/site-packages
NOT_IMPORTED := /site-packages/((mypy|mypyc|pip|setuptools|pkg_resources|uv|ruff|graphql|hypothesis_graphql|importlinter|grimp|docs|newsfragments)/|[^/]+/(tests|SelfTest|testing)/|playwright/async_api/|reportlab/(graphics|platypus)/)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --no-update-notifier --loglevel=error
	touch $@

run: setup
	$(BIN)/dxl run

# geth for the multi-node network tests (tests/network): built once from the Go module proxy into .tools/, like
# node_modules/; without Go the target says "network tests skipped: <why>" and succeeds. `make test` does not
# build it (a 4-minute compile would be most of a fresh clone's test time): the network tests run when geth is
# present and are skipped, saying so, when it is not; `.ci/run` builds it with GETH_REQUIRED=1 (failing when it
# cannot), so CI runs them.
geth:
	@scripts/build-geth.sh

# Every Python process of the suite (the workers, and the dxl, API and schemathesis processes tests start)
# imports the same sources; with PYTHONDONTWRITEBYTECODE set (some shells set it) each compiled them all again,
# up to 5 s of CPU apiece.
PYTEST := env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest

# Five workers on two cores: a worker waiting on a block, a node it restarts, a process it started or a
# browser leaves its core to another. With four, both cores were idle a twentieth of the run, most where the
# node tests that wait on real time ran side by side (/proc/stat sampled through a run). Same tree, set-up
# clones, geth absent, back to back: 160.6 s and 160.2 s with five against 166.2 s and 165.3 s with four (at
# 1b53463: 145.8 s with four, 153.8 s with three; earlier 148.6 s with three, 168.2 s with two).
TEST_WORKERS := 5
test: setup
	$(PYTEST) -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The suite in a random order (pytest-randomly: modules, then the tests within each, shuffled), to show no test
# leans on another having run first. The seed is printed ("Using --randomly-seed=N"); `make test-shuffled
# SEED=N` runs that order again. Not in `make test` or CI: the shuffled order loses the files' grouping its
# timing was measured with. PYTEST_ARGS narrows it, e.g. PYTEST_ARGS="-n 2 tests/api tests/audit".
test-shuffled: setup
	$(PYTEST) -n $(TEST_WORKERS) --dist loadgroup -p randomly $(if $(SEED),--randomly-seed=$(SEED)) $(PYTEST_ARGS)

# The committed contract artifacts must be what the sources compile to (`dxl compile --check`): a check of the
# tree like the formatter's, and its two optimised viaIR builds (some 20 s of a core each) run here, not in
# `make test`.
lint: setup
	$(BIN)/ruff check node api verifier dxl tests scripts
	$(BIN)/ruff format --check node api verifier dxl tests scripts
	$(BIN)/mypy node api verifier dxl
	$(BIN)/mypy --explicit-package-bases tests
	$(BIN)/lint-imports
	$(BIN)/dxl compile --check
	$(BIN)/python scripts/ape-abis.py --check
	$(BIN)/python scripts/verifier-abi.py --check

fmt: setup
	$(BIN)/ruff format node api verifier dxl tests scripts
	$(BIN)/ruff check --fix node api verifier dxl tests scripts

bench: setup
	$(BIN)/dxl bench

# Load and faults against a live `dxl run`, counted on the chain (tests/reliability). Not in `make test` or CI:
# the default profile runs until 5,000 writes and 10 faults of each kind; RELIABILITY_PROFILE=quick: < 10 min;
# RELIABILITY_PROFILE=network: `dxl run --network` on three geth signers (needs `make geth`), < 10 min.
# RELIABILITY_PROFILE=postgres: quick with the service's database in a private PostgreSQL cluster, < 10 min.
reliability: setup
	$(BIN)/python -m tests.reliability

# Lock files from pyproject.toml, with hashes: requirements.lock (run time), requirements-dev.lock (+ tools);
# requirements-uv.lock pins the installer make setup uses.
lock:
	scripts/lock.sh

clean:
	rm -rf $(VENV) node_modules .pytest_cache .tools

# Optional ape tooling (ape-config.yaml) in its own venv: ape pins eth-account<0.14, dxl runs 0.14. Its lock
# (`make lock`, from the `ape` extra alone) is hashed like the others.
APE_VENV ?= .venv-ape
.PHONY: ape
ape:
	test -x $(APE_VENV)/bin/python || $(PY) -m venv $(APE_VENV)
	$(APE_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-ape.lock

# The API's schemathesis run (tests/api/test_fuzz.py) at length: every phase for every role, more examples.
# Then the contracts' stateful models (tests/contracts/test_*_stateful.py: the ledger's rules, governance and
# membership, the sharing practice) at length: 100 sequences of up to 30 steps each, a minute or two apiece;
# -rP shows how often each model met each outcome.
.PHONY: fuzz
fuzz: setup
	DXL_FUZZ_FULL=1 DXL_FUZZ_EXAMPLES=$${DXL_FUZZ_EXAMPLES:-50} $(PYTEST) -q tests/api/test_fuzz.py
	DXL_RULES_EXAMPLES=$${DXL_RULES_EXAMPLES:-100} DXL_RULES_STEPS=$${DXL_RULES_STEPS:-30} \
		$(PYTEST) -q -rP -n 3 tests/contracts/test_*_stateful.py
