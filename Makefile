# Two commands work on a fresh machine with only Python 3.11+: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench fuzz clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job: audit the example fleet against example hosts (exit 1 = some guest affected,
# 3 = some guest could not be assessed; both are expected here).
demo: $(STAMP)
	@for host in examples/hosts/xen-4.4.0-intel.txt examples/hosts/xen-4.4.2-intel-watchdog.txt \
	             examples/hosts/xen-4.17.3-amd.txt; do \
	  echo "== xenvmmu audit --host $$host examples/guests"; \
	  $(BIN)/xenvmmu audit --host $$host examples/guests; rc=$$?; \
	  test $$rc -le 3 || exit $$rc; echo; \
	done
	@echo "== xenvmmu sweep: the attack over 4 releases x 2 paging modes x 6 sizes -> build/demo-sweep"
	@rm -rf build/demo-sweep  # fresh figures from this tree's model (a sweep resumes otherwise)
	@$(BIN)/xenvmmu sweep --xen 4.4.0,4.4.2,4.5.0,4.17.0 --paging hap,shadow \
	  --memory 1G,4G,16G,64G,256G,1T --duration-ms 10 --out build/demo-sweep; \
	  rc=$$?; test $$rc -le 1 || exit $$rc
	@echo "== xenvmmu report -> build/report.html (figures also in build/plots/)"
	@$(BIN)/xenvmmu report --host examples/hosts/xen-4.4.0-intel.txt --sweep build/demo-sweep \
	  --output build/report.html --plots-dir build/plots examples/guests; \
	  rc=$$?; test $$rc -le 3 || exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# The hostile-input suite with many examples per input surface (the default run tries a few).
# FUZZ_EXAMPLES overrides the count: make fuzz FUZZ_EXAMPLES=20000
fuzz: $(STAMP)
	XENVMMU_HYPOTHESIS_PROFILE=xenvmmu-fuzz XENVMMU_FUZZ_EXAMPLES=$(or $(FUZZ_EXAMPLES),1000) \
	  $(BIN)/python -m pytest tests/hostile --hypothesis-show-statistics

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
