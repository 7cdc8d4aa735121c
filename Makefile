# The book's two commands on a fresh machine:
#   make book   set up .venv (if needed), then build the HTML (executing the notebooks, cached)
#   make test   set up .venv (if needed), then lib tests + contract, nbval over every notebook,
#               and the -W HTML build
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

.PHONY: help setup book build test test-fast test-lib test-notebooks nb lab strip bib clean checkpoints bench

help:
	@echo "make book | test | test-fast | nb NB=path.ipynb | lab | strip | bib | checkpoints | bench | clean"

setup: $(STAMP)

$(STAMP): requirements.txt requirements-test.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the pinned requirements into $(VENV) (about 2 minutes the first time)..."
	@$(BIN)/python -m pip install -q -r requirements-test.txt 2>&1 | $(QUIET_PIP)
	@$(BIN)/python -m pip install -q --no-deps -e . 2>&1 | $(QUIET_PIP)
	@$(BIN)/python -c "import lib, torch, gymnasium, nbval; print('setup ok: torch', torch.__version__)"
	@touch $(STAMP)

book: setup build
	@echo "Book built: $(CURDIR)/_build/html/index.html"

build: setup
	$(BIN)/jupyter-book build . -W -n --keep-going

test: setup test-lib test-notebooks build
	@echo "make test: all passed"

test-fast: setup test-lib

test-lib: setup
	$(BIN)/python -m pytest tests -n $(JOBS) -q

test-notebooks: setup
	OMP_NUM_THREADS=$(NB_THREADS) MKL_NUM_THREADS=$(NB_THREADS) \
	$(BIN)/python -m pytest chapters --nbval-lax --nbval-current-env --nbval-cell-timeout=600 \
	    -n $(JOBS) --dist loadfile -q

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

# Regenerate the shipped tokenizer and checkpoints (see each data/ sidecar for the exact command and
# the machine that produced the shipped files; a CPU rerun gives equivalent, not bit-identical, weights).
checkpoints: setup
	$(BIN)/python -m lib.llm.tokenizer
	OMP_NUM_THREADS=2 $(BIN)/python -m lib.llm.pretrain --preset tiny-lm
	OMP_NUM_THREADS=2 $(BIN)/python -m lib.llm.pretrain --preset tiny-lm-moe
	OMP_NUM_THREADS=1 $(BIN)/python -m lib.align.sft
	$(BIN)/python -m lib.llm.vlm --steps 4000 --lr 0.001 --vision-layers 1 --lm-layers 2 --batch-size 64 --n-train 6000 --device $$($(BIN)/python -c "import lib; print(lib.device().type)")

# Performance comparisons against the reference libraries; results are recorded in bench/RESULTS.md.
bench: setup
	$(BIN)/python bench/bench_llm.py
	OMP_NUM_THREADS=1 $(BIN)/python bench/bench_dqn.py
	OMP_NUM_THREADS=1 $(BIN)/python bench/bench_policy.py
	OMP_NUM_THREADS=1 $(BIN)/python bench/bench_grpo.py

clean:
	rm -rf _build
