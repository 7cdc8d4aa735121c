"""Book-wide pytest plugin: per-notebook execution time against its budget, the whole-book
wall time, and the seed-map coverage line.

Every nbval run (``make test``) prints each notebook's execution time, slowest first, with its
budget (90 s unless the notebook declares ``metadata.book.budget_s`` with a
``budget_reason``); a notebook over budget, or a whole book over ``BOOK_BUDGET_S``, fails
the run (unless ``BOOK_NO_BUDGET`` is set, as ``make robust`` does: it judges self-checks
only). Every pytest run prints ``seed entries covered: N/128``.
"""
from __future__ import annotations

import collections
import os
import pathlib
import time

import pytest

BOOK_BUDGET_S = 15 * 60.0   # the whole book, wall time of one nbval run

_times: dict[str, float] = collections.defaultdict(float)
_state: dict = {}


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_sessionstart(session):
    _state["t0"] = time.perf_counter()


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        _times[path] += report.duration


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    _write_executed(config)      # in each worker: the notebooks it executed
    if _is_worker(config) or not _times:
        return
    from lib.book import notebook_budget, read_notebook

    root = pathlib.Path(str(config.rootpath))
    rows, over = [], []
    for path, secs in _times.items():
        try:
            budget, _ = notebook_budget(read_notebook(root / path))
        except ValueError:
            budget = 90.0
        rows.append((secs, path, budget))
        if secs > budget:
            over.append(path)
    wall = time.perf_counter() - _state.get("t0", time.perf_counter())
    _state.update(rows=sorted(rows, reverse=True), over=over, wall=wall)
    if (over or wall > BOOK_BUDGET_S) and not os.environ.get("BOOK_NO_BUDGET"):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _is_worker(config):
        return
    tr = terminalreporter
    rows = _state.get("rows")
    if rows:
        tr.section("notebook execution times (slowest first)")
        for secs, path, budget in rows:
            flag = "  OVER BUDGET" if secs > budget else ""
            tr.write_line(f"{secs:7.1f} s / {budget:5.0f} s  {path}{flag}")
        total = sum(r[0] for r in rows)
        tr.write_line(f"{total:7.1f} s  total over {len(rows)} notebooks; "
                      f"wall {_state['wall']:.1f} s (book budget {BOOK_BUDGET_S:.0f} s)")
        if _state["over"]:
            tr.write_line(f"FAILED: {len(_state['over'])} notebook(s) over budget: {', '.join(_state['over'])}",
                          red=True)
        if _state["wall"] > BOOK_BUDGET_S:
            tr.write_line("FAILED: the whole book ran over its budget", red=True)
    try:
        from lib.book import check_book

        report = check_book(pathlib.Path(str(config.rootpath)))
        tr.write_line(report.coverage_line())
    except Exception as exc:  # never hide the test results behind a summary error
        tr.write_line(f"seed coverage unavailable: {exc}")


# ------------------------------------------------------------------ one execution per test run
# With BOOK_EXECUTED_DIR set (``make test`` sets it), every notebook that nbval executes without
# a failure is written there with the outputs nbval captured; ``tools/book_cache.py prime`` then
# puts those executions into the build's jupyter-cache, so that the HTML build renders the very
# outputs the tests checked instead of executing every notebook a second time.

_executed: dict[str, dict] = {}      # notebook path -> {"nb": NotebookNode, "ok": bool, "n": int}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if call.when != "call" or not os.environ.get("BOOK_EXECUTED_DIR"):
        return
    parent = getattr(item, "parent", None)
    nb = getattr(parent, "nb", None)
    if nb is None or not hasattr(item, "test_outputs") or not hasattr(item, "cell"):
        return
    rec = _executed.setdefault(str(parent.fspath), {"nb": nb, "ok": True, "n": 0, "t": 0.0})
    report = outcome.get_result()
    rec["ok"] = rec["ok"] and report.passed
    rec["n"] += 1
    rec["t"] += report.duration
    item.cell.outputs = list(item.test_outputs or [])
    item.cell.execution_count = rec["n"]
    for out in item.cell.outputs:
        if out.get("output_type") == "execute_result":
            out["execution_count"] = rec["n"]


def _write_executed(config) -> None:
    out_dir = os.environ.get("BOOK_EXECUTED_DIR")
    if not out_dir or not _executed:
        return
    import json

    import nbformat

    root = pathlib.Path(str(config.rootpath))
    for path, rec in _executed.items():
        rel = pathlib.Path(path).resolve().relative_to(root)
        target = root / out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not rec["ok"]:
            target.unlink(missing_ok=True)
            continue
        nbformat.write(rec["nb"], str(target))
        meta = {"execution_seconds": rec["t"], "source": rel.as_posix()}
        target.with_suffix(".json").write_text(json.dumps(meta))
