# The README's two commands: `make demo` and `make test`. Both create .venv when missing.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.crsky-installed
# Threaded BLAS/OpenMP and healpy run 10-100x slower on small machines: pin them.
THREADS := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
# Test processes (pytest-xdist, one test file per process at a time): one per core.
JOBS    ?= 2

.PHONY: demo test test-slow lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(THREADS) $(VENV)/bin/crsky demo

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(THREADS) $(PY) -m pytest -q -n $(JOBS) --dist loadfile

test-slow: $(STAMP)
	$(THREADS) $(PY) -m pytest -q -m slow -n $(JOBS) --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) demo-output .pytest_cache
