"""Checkers for the exercises of Part 11 (the index, the bibliography, how to cite).

Each compares the reader's function with the vetted :mod:`lib.bookindex` implementation on
random inputs (see :func:`lib.exercises.check_function`).

Book: seed-122, seed-123, seed-125.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import CheckReport, check_function
from .. import bookindex

_MODULES = ["lib/a.py", "lib/b.py", "lib/c/d.py", "lib/e.py"]


def _rows_inputs(rng: np.random.Generator) -> dict:
    rows = []
    for i in range(int(rng.integers(1, 9))):
        mods = tuple(sorted(set(rng.choice(_MODULES, size=int(rng.integers(0, 3))).tolist())))
        written = rng.random() < 0.7
        rows.append(bookindex.IndexRow(f"seed-{i + 1}", 1, "题", "title", None,
                                       f"chapters/x/n{i}" if written else None, mods, (), ()))
    return {"rows": rows, "module": str(rng.choice(_MODULES))}


def check_sections_of_module(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(rows, module)`` -> the labels of the *written* sections whose row names
    ``module`` among its modules, in the rows' order."""
    return check_function(candidate, bookindex.sections_of_module, _rows_inputs,
                          name="sections of a module", trials=trials)


_PIECES = ["{cite}`a1`", "{cite}`b2,c3`", "{cite:p}`d4`", "{cite:t}`e5, f6`", "`{cite}`",
           "`` {cite}`g7` ``", "plain text ", "`code` ", "\n```\n{cite}`h8`\n```\n", ", ", "{cite}"]


def _text_inputs(rng: np.random.Generator) -> dict:
    k = int(rng.integers(1, 8))
    return {"text": " ".join(str(x) for x in rng.choice(_PIECES, size=k))}


def check_cited_keys(candidate: Callable, trials: int = 40) -> CheckReport:
    """``candidate(text)`` -> the keys of every ``{cite}`…``` role (any ``{cite:x}`` variant,
    comma-separated keys stripped), in order; roles inside code spans or fenced blocks are not
    citations."""
    return check_function(candidate, bookindex.cited_keys, _text_inputs, name="cited keys",
                          trials=trials)


_FIELDS = ["title", "year", "publisher", "journal", "booktitle", "url", "author", "editor", "note"]


def _entry_inputs(rng: np.random.Generator) -> dict:
    kind = str(rng.choice(sorted(bookindex.REQUIRED_FIELDS)))
    fields = {f: ("" if rng.random() < 0.15 else "x") for f in _FIELDS if rng.random() < 0.6}
    return {"entry_type": kind, "fields": fields}


def _missing_sorted(entry_type, fields):
    return sorted(bookindex.missing_fields(entry_type, fields))


def check_missing_fields(candidate: Callable, trials: int = 40) -> CheckReport:
    """``candidate(entry_type, fields)`` -> the required fields (``lib.bookindex.REQUIRED_FIELDS``
    plus ``author``, which an ``editor`` replaces) that are absent or empty, as a set."""
    return check_function(lambda entry_type, fields: sorted(candidate(entry_type, fields)),
                          _missing_sorted, _entry_inputs, name="missing BibTeX fields",
                          trials=trials)


__all__ = ["check_sections_of_module", "check_cited_keys", "check_missing_fields"]
