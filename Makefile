# fourbit: `make` runs the main flow, `make test` the test suite. Both bootstrap what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fourbit-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Options (see README): SIM, UNIT, SEED, WAVES, LONG, BOARD, FAST, JOBS, DASK_SCHEDULER
export SIM UNIT SEED WAVES LONG BOARD FAST JOBS DASK_SCHEDULER

PYTEST_MARK := $(if $(filter-out 0,$(LONG)),,-m "not slow")
FAST_ON := $(filter-out 0,$(FAST))

.PHONY: all test selfcheck tools verilog sim formal synth synth-large synth-extra chip train train-quick flow-train array-bench report bitstream sweep constraints clean

# The main flow; FAST=1 runs the quick regression, the quick synthesis and no training. The sim and
# synth stages run at the same time (JOBS=1: one after the other), each with its pool of JOBS runs:
# neither stage's last long runs nor its serial steps (Verilog before synthesis, the array benchmark
# after the regression) leave a core idle.
all: tools
	@$(MAKE) --no-print-directory selfcheck
	@$(MAKE) --no-print-directory verilog
	@$(MAKE) --no-print-directory -j$(if $(filter 1,$(JOBS)),1,2) sim synth
	@$(MAKE) --no-print-directory flow-train
	@$(MAKE) --no-print-directory report

# $(call stage,name,command): a banner, the command, its wall time and the CPU time of its processes
# (bash's `times`: wall time on a shared machine varies, CPU time hardly) in build/stages/<name>.json;
# a failing stage stops the flow with its name (the results of earlier stages stay in build/).
define stage
	@echo "== fourbit [$(1)] $(2)"; mkdir -p build/stages; start=$$(date +%s%N); \
	$(3) || { rc=$$?; echo "fourbit: stage '$(1)' failed (exit $$rc); earlier results are kept in build/" >&2; exit $$rc; }; \
	ms=$$(( ($$(date +%s%N) - start) / 1000000 )); \
	times > build/stages/$(1).times; \
	cpu=$$(awk 'NR == 2 { split($$0, t, /[ms ]+/); printf "%.1f", 60 * t[1] + t[2] + 60 * t[3] + t[4] }' build/stages/$(1).times); \
	rm -f build/stages/$(1).times; \
	printf '{"stage": "%s", "seconds": %d.%03d, "cpu_seconds": %s}\n' $(1) $$((ms / 1000)) $$((ms % 1000)) $$cpu > build/stages/$(1).json; \
	echo "== fourbit [$(1)] done: $$((ms / 1000)) s wall, $$cpu s CPU"
endef

# The venv gets the exact versions of constraints.txt (what the figures in the README came from).
$(STAMP): pyproject.toml constraints.txt
	@echo "== fourbit: creating $(VENV) and installing the pinned Python packages (constraints.txt)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

# Pin what the venv has now (run after adding a dependency to pyproject.toml and installing it).
constraints: $(STAMP)
	@{ sed -n '/^#/p' constraints.txt; $(PY) -m pip freeze --exclude-editable; } > constraints.txt.new && mv constraints.txt.new constraints.txt
	@echo "== fourbit: constraints.txt pins $$(grep -vc '^#' constraints.txt) packages"

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
	$(call stage,selfcheck,golden model self-check,$(PY) -m golden)

verilog: $(STAMP)
	$(call stage,verilog,Verilog of every unit and the default array into build/verilog,$(PY) -m rtl)

sim: tools
	$(call stage,sim,cocotb regression against the golden model (SIM=$(or $(SIM),all) UNIT=$(or $(UNIT),all)),\
	  $(PY) -m testbench $(if $(FAST_ON),--quick) && { [ -n "$(UNIT)" ] || $(PY) -m testbench.array_bench; })

formal: $(STAMP)
	$(call stage,formal,formal proofs with SymbiYosys into build/formal,$(PY) -m testbench.formal)

synth: $(STAMP)
	$(call stage,synth,Yosys + nextpnr for ECP5 and iCE40 into build/synth,$(PY) -m synth $(if $(FAST_ON),--quick) $(SYNTH_ARGS))

# Out of the default flow for its time: the 8x8 arrays (LUT PEs and DSP pairs) and the 4x4 FP16
# array on ECP5; their rows merge into build/synth/report.json and stay there, dated, when
# `make synth` runs again.
synth-large: $(STAMP)
	$(call stage,synth-large,the 8x8 arrays and the 4x4 FP16 array on ECP5 into build/synth,$(PY) -m synth --designs training_array training_array_dsp fp16_array --arrays 8 --fp16-arrays 4 $(SYNTH_ARGS))

# Out of the default flow for its time: the largest fourbit, FP16, MXFP4 and NVFP4 arrays per ECP5 device
# (LFE5U-25F, LFE5U-85F; LUT-only and with DSPs), one place and route each, and a training step on each
# simulated. Never run whole: the cells measured on 2026-12-05 sum to 147 min of CPU (an 85F cell about
# 50 min, a 25F cell 4-9 min); the whole target is about 5-6 h of CPU, 3 h wall on 2 free cores (estimate).
chip: $(STAMP)
	$(call stage,chip,chip-level comparison into build/chip,$(PY) -m synth.chip $(CHIP_ARGS))

# Out of the default flow as figures no headline uses: the runs `make synth` leaves out (iCE40 and
# ECP5-DSP of the MX units, the quantizer and GradScale, the 4x4 array on iCE40); rows merge and stay.
synth-extra: $(STAMP)
	$(call stage,synth-extra,every design on every target and mapping into build/synth,$(PY) -m synth --all-runs $(SYNTH_ARGS))

train: $(STAMP)
	$(call stage,train,the accuracy table into build/train,$(PY) -m golden.training.table)

train-quick: $(STAMP)
	$(call stage,train,fourbit vs FP32 on digits into build/train/quick,$(PY) -m golden.training.table --quick)

flow-train: $(STAMP)
ifeq ($(FAST_ON),)
	@$(MAKE) --no-print-directory train-quick
else
	@echo "== fourbit [train] skipped (FAST=1)"
endif

report: $(STAMP)
	$(call stage,report,build/report.md and build/report.html,$(PY) -m synth.project_report)

bitstream: $(STAMP)
	$(call stage,bitstream,self-testing bitstream for $(or $(BOARD),ulx3s) into build/boards,$(PY) -m synth.boards --board $(or $(BOARD),ulx3s) $(BOARD_ARGS))

sweep: $(STAMP)
	$(call stage,sweep,design-space sweep on Dask into build/synth/sweep.json,$(PY) -m synth sweep $(SWEEP_ARGS))

array-bench: $(STAMP)
	$(call stage,array-bench,utilization of the 8x8 array into build/sim,$(PY) -m testbench.array_bench)

test: tools
	@$(PY) -m pytest $(PYTEST_MARK) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "fourbit: pytest collected no tests: that is a failure"; exit 1; fi; exit $$rc

clean:
	rm -rf build
