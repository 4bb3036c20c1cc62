# Two commands work on a fresh machine with only Python 3.11+: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean venv

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

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
