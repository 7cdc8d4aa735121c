# The book's two commands on a fresh machine:
#   make book   set up .venv (if needed), then build the HTML (executing the notebooks, cached)
#   make test   set up .venv (if needed), then lib tests + contract, nbval over every notebook
#               (the one execution of each notebook), the -W HTML build rendered from nbval's
#               executions, and the scan of the built pages; prints each phase's time
#   make robust every notebook under five seed/thread variants (not part of make test)
# Setup is idempotent: it reinstalls only when requirements*.txt or pyproject.toml change.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.book-installed
JOBS ?= 2
NB_THREADS ?= 1
export SDL_VIDEODRIVER := dummy
export PYDEVD_DISABLE_FILE_VALIDATION := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
QUIET_PIP := { grep -v -e '^WARNING: Location' -e '^WARNING: Ignoring' || true; }
EXECUTED := _build/.executed
# Progress bars show in Jupyter, not in the book: executions that feed the HTML run without them.
NO_BARS := TQDM_DISABLE=1
# `$(TIMED) "name" -- cmd` runs one phase and records its wall time in _build/phase-times.txt.
TIMED = $(BIN)/python tools/timed.py

.PHONY: help setup book build test test-fast test-lib test-notebooks test-pages robust nb lab strip bib \
	clean checkpoints bench

help:
	@echo "make book | test | test-fast | robust [NB=path.ipynb] | nb NB=path.ipynb | lab | strip | bib"
	@echo "     | checkpoints | bench | clean"

setup: $(STAMP)

$(STAMP): requirements.txt requirements-test.txt pyproject.toml
	@mkdir -p _build; date +%s > _build/.install-start
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the pinned requirements into $(VENV) (about 2 minutes the first time)..."
	@$(BIN)/python -m pip install -q -r requirements-test.txt 2>&1 | $(QUIET_PIP)
	@$(BIN)/python -m pip install -q --no-deps -e . 2>&1 | $(QUIET_PIP)
	@$(BIN)/python -c "import lib, torch, gymnasium, nbval; print('setup ok: torch', torch.__version__)"
	@touch $(STAMP)
	@echo "install: $$(( $$(date +%s) - $$(cat _build/.install-start) )) s" >> _build/phase-times.txt

book: setup build
	@echo "Book built: $(CURDIR)/_build/html/index.html"

# Builds from the jupyter-cache: a notebook executed by `make test` (or an earlier build) with the
# same code is rendered from that execution; a changed one is executed here.
build: setup
	$(TIMED) "HTML build" -- $(NO_BARS) $(BIN)/jupyter-book build . -W -n --keep-going

# The phase log starts with the install (when this run installed) and lists every phase after it.
test:
	@mkdir -p _build; rm -f _build/phase-times.txt
	@$(MAKE) --no-print-directory setup test-lib test-notebooks build test-pages
	@echo "make test: all passed. Wall time of each phase:"; $(TIMED) --show; rm -f _build/phase-times.txt

test-fast: setup test-lib

test-lib: setup
	$(TIMED) "lib tests" -- $(BIN)/python -m pytest tests -n $(JOBS) -q

# nbval executes every notebook once; the executions that pass are handed to the HTML build.
test-notebooks: setup
	@rm -rf $(EXECUTED)
	$(TIMED) "notebooks (nbval)" -- $(NO_BARS) BOOK_EXECUTED_DIR=$(EXECUTED) \
	    OMP_NUM_THREADS=$(NB_THREADS) MKL_NUM_THREADS=$(NB_THREADS) \
	    $(BIN)/python -m pytest chapters --nbval-lax --nbval-current-env --nbval-cell-timeout=600 \
	    -n $(JOBS) --dist loadfile -q
	$(BIN)/python tools/book_cache.py prime $(EXECUTED)

# After the build: the HTML was rendered from nbval's executions, and every page is clean.
test-pages: setup
	$(BIN)/python tools/book_cache.py verify $(EXECUTED)
	$(TIMED) "page scan" -- $(BIN)/python tools/scan_pages.py _build/html

# Every notebook (or NB=path.ipynb) under seed shifts 1-4 on one thread and shift 0 on two
# threads; prints a notebook x variant table and fails if any variant fails. See README.
robust: setup
	$(NO_BARS) $(BIN)/python tools/robust.py $(NB)

nb: setup
	@test -n "$(NB)" || { echo "usage: make nb NB=chapters/.../name.ipynb"; exit 2; }
	$(BIN)/python tools/run_notebook.py $(NB)

lab: setup
	$(BIN)/jupyter lab --no-browser $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

strip: setup
	find chapters -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' -print0 | xargs -0 $(BIN)/nbstripout
	$(BIN)/python -m pytest tests/test_contract.py -q

bib: setup
	$(BIN)/python tools/make_bib.py

# Regenerate every shipped artefact from the one table in tools/checkpoints.py (each writes a sidecar
# with the command, the commit and the machine; a CPU rerun gives equivalent, not bit-identical,
# weights). `python tools/checkpoints.py --list` prints the table; `--only NAME` runs one row.
checkpoints: setup
	$(BIN)/python tools/checkpoints.py

# Performance comparisons against the reference libraries. The RL scripts rewrite the JSON records in
# bench/results/ (rendered by chapters/11-appendix/benchmarks.ipynb), the GRPO one bench/grpo_seeds.json;
# bench/RESULTS.md holds the narrative. Run on an otherwise idle machine for clean wall-time ratios.
bench: setup
	$(BIN)/python bench/bench_llm.py --profile
	OMP_NUM_THREADS=1 $(BIN)/python bench/bench_efficiency.py
	OMP_NUM_THREADS=1 $(BIN)/python bench/bench_policy.py --seeds 0 1 2 3 4
	OMP_NUM_THREADS=1 $(BIN)/python bench/bench_dqn.py --seeds 0 1 2 3 4
	OMP_NUM_THREADS=1 $(BIN)/python bench/bench_grpo.py --starts tiny-lm-arith-sft --seeds 0 1 2 3 \
		--out bench/grpo_seeds.json
	OMP_NUM_THREADS=1 $(BIN)/python bench/bench_policy_seeds.py --seeds 0 1 2 3 4 5 6 7 \
		--out bench/policy_seeds.json

clean:
	rm -rf _build
