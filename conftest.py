"""Book-wide pytest plugin: per-notebook execution time against its budget, the whole-book
wall time, and the seed-map coverage line.

Every nbval run (``make test``) prints each notebook's execution time, slowest first, with its
budget (90 s unless the notebook declares ``metadata.book.budget_s`` with a
``budget_reason``); a notebook over budget, or a whole book over ``BOOK_BUDGET_S``, fails
the run. Every pytest run prints ``seed entries covered: N/128``.
"""
from __future__ import annotations

import collections
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
    if over or wall > BOOK_BUDGET_S:
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
