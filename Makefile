# fourbit: `make` runs the main flow, `make test` the test suite. Both bootstrap what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fourbit-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Options (see README): SIM, UNIT, SEED, WAVES, LONG, BOARD, FAST
export SIM UNIT SEED WAVES LONG BOARD FAST

PYTEST_MARK := $(if $(LONG),,-m "not slow")

.PHONY: all test selfcheck tools clean

all: selfcheck

$(STAMP): pyproject.toml
	@echo "== fourbit: creating $(VENV) and installing the pinned Python packages"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

# Icarus Verilog comes from the system; install it with apt-get where that is possible.
tools: $(STAMP)
	@command -v iverilog >/dev/null || { \
	  if command -v apt-get >/dev/null; then \
	    echo "== fourbit: iverilog is missing, installing it with apt-get"; \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq iverilog; \
	  else \
	    echo "fourbit: iverilog (Icarus Verilog >= 11) is missing and apt-get is not available;"; \
	    echo "         install it with your package manager (e.g. 'brew install icarus-verilog') and re-run."; \
	    exit 1; \
	  fi; }

selfcheck: $(STAMP)
	$(PY) -m golden

test: tools
	@$(PY) -m pytest $(PYTEST_MARK) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "fourbit: pytest collected no tests: that is a failure"; exit 1; fi; exit $$rc

clean:
	rm -rf build
