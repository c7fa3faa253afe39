# Every target creates .venv itself: a fresh machine needs only Python and pip.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The demos install only what they run: licet itself, plus the server extra online.
DEMO_STAMP := $(VENV)/.installed-demo
ONLINE_STAMP := $(VENV)/.installed-online

# Where the tests' temporary folders go, and how many pytest workers run them.
TEST_TMPDIR ?= $(shell [ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm/licet-tests || echo $${TMPDIR:-/tmp}/licet-tests)
TEST_WORKERS ?= auto
ifndef TEST_SEED
TEST_SEED := $(shell $(PYTHON) -c 'import random; print(random.randrange(2**32))')
endif

.PHONY: test test-fast lint demo demo-online bench audit clean vectors interop

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(DEMO_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(DEMO_STAMP)

$(ONLINE_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[server]'
	touch $(ONLINE_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check verifier keytool issuer tests bench examples vectors
	$(BIN)/ruff format --check verifier keytool issuer examples vectors
	$(BIN)/mypy

test: lint interop
	# The QR round-trip test decodes PNGs with Debian's zbarimg; install it when we may.
	@command -v zbarimg >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zbar-tools >/dev/null; } || true
	# Integration tests run the installed console scripts, so .venv/bin goes first on PATH.
	# Every core runs tests (xdist; an xdist_group stays on one worker), in random order
	# (make test TEST_SEED=N repeats an order), and temporary folders live in memory
	# when /dev/shm exists: many ledger tests are bound by fsync.
	mkdir -p $(TEST_TMPDIR)
	@echo "random order: TEST_SEED=$(TEST_SEED)"
	PATH=$(CURDIR)/$(BIN):$$PATH TMPDIR=$(TEST_TMPDIR) $(BIN)/python -m pytest -q \
		-n $(TEST_WORKERS) --dist loadgroup -p randomly --randomly-seed=$(TEST_SEED) \
		--durations=20 $(PYTEST_ARGS)

# The second, independent verifier (JavaScript, Node 20+, jose from npm) against every vector.
interop:
	cd interop/js && npm ci --no-audit --no-fund --loglevel=error && npm test

# The conformance vectors of docs/PROTOCOL.md, from fixed test-only keys and a fixed clock.
vectors: $(STAMP)
	$(BIN)/python vectors/generate.py --out vectors

# The unit and property layers only: seconds, for the edit-test loop (no servers, no browser).
test-fast: $(STAMP)
	mkdir -p $(TEST_TMPDIR)
	@echo "random order: TEST_SEED=$(TEST_SEED)"
	PATH=$(CURDIR)/$(BIN):$$PATH TMPDIR=$(TEST_TMPDIR) $(BIN)/python -m pytest -q \
		-n $(TEST_WORKERS) --dist loadgroup -p randomly --randomly-seed=$(TEST_SEED) tests/unit tests/property $(PYTEST_ARGS)

demo: $(DEMO_STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH bash examples/demo.sh
	@echo; echo "The commands are in .venv/bin: run '. .venv/bin/activate' (or call .venv/bin/licet ...)."

demo-online: $(ONLINE_STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH bash examples/demo-online.sh
	@echo; echo "The commands are in .venv/bin: run '. .venv/bin/activate' (or call .venv/bin/licet ...)."

bench: $(STAMP)
	status=0; for b in bench/verify.py bench/ledger.py bench/server.py bench/lifecycle.py bench/console.py bench/postgres.py bench/webhooks.py bench/interop_js.py; do PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python $$b || status=1; echo; done; exit $$status

# Known-vulnerability scan of the installed environment. It asks the PyPI
# advisory database over the network, so it is not part of `make test`.
audit: $(STAMP)
	$(BIN)/python -m pip install --quiet pip-audit
	$(BIN)/pip-audit --progress-spinner off

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
