"""The book's RL data tables, one source for every figure that uses them:

* ``"algorithms"`` — ``data/rl-algorithms.csv``, the algorithm registry: family, on/off-policy
  (or offline / n/a for planning), model-based or model-free, action space, year, paper and its
  bib key, and — for the algorithms the book implements — the ``lib`` symbol and the notebook.
  Drawn as the RL algorithm map (Part 1, seed-1-5) and as the classification of RL (Part 6, seed-41).
* ``"history"`` — ``data/rl-basics-history.csv``, milestones of RL (Part 6, seed-33).

:func:`check_links` verifies that every link resolves: the symbol imports, the notebook exists, is
listed in ``_toc.yml`` and uses the symbol — so the tables cannot drift from the code. It lives beside
:mod:`lib.book` and :mod:`lib.bookmap` (the book's structure), not in :mod:`lib.rl`: algorithms do not
know where the book shows them.

Book: seed-1-5, seed-33, seed-41.
"""
from __future__ import annotations

import csv
import importlib
import pathlib

from . import DATA_DIR, ROOT

#: The tables this module knows, by short name.
TABLES = {"history": "rl-basics-history.csv", "algorithms": "rl-algorithms.csv"}

FAMILIES = ("bandit", "dynamic programming", "value-based", "policy-based", "actor-critic", "planning",
            "model-based", "imitation", "inverse RL", "multi-agent", "hierarchical", "offline", "alignment")
POLICY = ("on-policy", "off-policy", "offline", "n/a")
MODEL = ("model-free", "model-based")
ACTION_SPACE = ("discrete", "continuous", "both")
ALGORITHM_COLUMNS = ("name", "family", "policy", "model", "action_space", "year", "authors", "paper", "url",
                     "bib", "lib_symbol", "notebook")


def load_table(name: str, path: pathlib.Path | str | None = None) -> list[dict]:
    """Rows of a table (``"history"`` or ``"algorithms"``) as dicts; ``year`` as ``int``.

    The algorithm table is validated (columns, families, policy/model/action-space values, unique
    names, a notebook for every symbol and vice versa). Raises ``ValueError`` for an unknown name
    or a malformed row.
    """
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; expected one of {sorted(TABLES)}")
    path = pathlib.Path(path) if path is not None else DATA_DIR / TABLES[name]
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        fields = tuple(reader.fieldnames or ())
        rows = list(reader)
    if name == "algorithms" and fields != ALGORITHM_COLUMNS:
        raise ValueError(f"{path.name}: columns must be {ALGORITHM_COLUMNS}, got {fields}")
    seen = set()
    for i, row in enumerate(rows, start=2):
        if None in row or any(v is None for v in row.values()):
            raise ValueError(f"{path.name} row {i}: wrong number of fields")
        try:
            row["year"] = int(row["year"])
        except (KeyError, ValueError):
            raise ValueError(f"{path.name} row {i}: year must be an integer") from None
        if name != "algorithms":
            continue
        if row["name"] in seen:
            raise ValueError(f"{path.name} row {i}: duplicate algorithm {row['name']!r}")
        seen.add(row["name"])
        for col, allowed in (("family", FAMILIES), ("policy", POLICY), ("model", MODEL),
                             ("action_space", ACTION_SPACE)):
            if row[col] not in allowed:
                raise ValueError(f"{path.name} row {i}: {col} {row[col]!r} is not one of {allowed}")
        if bool(row["lib_symbol"]) != bool(row["notebook"]):
            raise ValueError(f"{path.name} row {i}: an implemented row needs both lib_symbol and notebook")
    return rows


def check_history(history: list[dict], algorithms: list[dict]) -> list[str]:
    """Problems between the history table and the algorithm registry (empty when consistent).

    A milestone that names an algorithm the book implements (the registry row cites the same
    paper and its name, without a parenthesis, occurs in the milestone's text) must link to it:
    same ``lib_symbol`` and ``notebook``, not be drawn as context only. A milestone with a
    ``lib_symbol`` needs a ``notebook`` and the reverse.
    """
    problems = []
    for h in history:
        label = h.get("milestone", "?")
        if bool(h.get("lib_symbol")) != bool(h.get("notebook")):
            problems.append(f"{label}: a linked milestone needs both lib_symbol and notebook")
        for a in algorithms:
            if not a.get("lib_symbol") or a.get("bib") != h.get("paper"):
                continue
            name = a["name"].split("(")[0].strip().lower()
            if name and name in label.lower():
                nb = h.get("notebook", "").removesuffix(".ipynb")
                if h.get("lib_symbol") != a["lib_symbol"] or nb != a["notebook"].removesuffix(".ipynb"):
                    problems.append(f"{label}: the book implements {a['name']} ({a['lib_symbol']}, "
                                    f"{a['notebook']}): link it instead of drawing it as context only")
    return problems


def resolve_symbol(dotted: str):
    """Import ``package.module.attr`` and return the attribute (``ImportError``/``AttributeError`` if absent)."""
    module, _, attr = str(dotted).rpartition(".")
    if not module:
        raise ValueError(f"expected a dotted path like lib.rl.module.name, got {dotted!r}")
    return getattr(importlib.import_module(module), attr)


def _notebook_path(root: pathlib.Path, nb: str) -> pathlib.Path:
    return root / (nb if nb.endswith(".ipynb") else f"{nb}.ipynb")


def check_links(rows: list[dict], root: pathlib.Path | str | None = None) -> list[str]:
    """Problems with the rows' links (empty when all resolve).

    For each row: ``lib_symbol`` (if given) must be a ``lib.`` path that imports; ``notebook`` (if
    given, with or without ``.ipynb``) must exist, be listed in ``_toc.yml`` and mention the
    symbol's name; a notebook without a symbol is a problem too.
    """
    from .book import toc_files

    root = pathlib.Path(root) if root is not None else ROOT
    try:
        toc = set(toc_files(root))
    except FileNotFoundError:
        toc = None
    problems = []
    for row in rows:
        label = row.get("name") or row.get("milestone")
        sym, nb = row.get("lib_symbol", ""), row.get("notebook", "")
        if sym:
            if not sym.startswith("lib."):
                problems.append(f"{label}: {sym} is not a lib symbol")
            try:
                resolve_symbol(sym)
            except (ImportError, AttributeError, ValueError) as exc:
                problems.append(f"{label}: lib symbol {sym} does not resolve ({exc})")
        if nb:
            p = _notebook_path(root, nb)
            if not p.is_file():
                problems.append(f"{label}: notebook {nb} does not exist")
            elif not sym:
                problems.append(f"{label}: links a notebook but names no lib symbol")
            elif sym.rpartition(".")[2] not in p.read_text(encoding="utf-8"):
                problems.append(f"{label}: notebook {nb} never uses {sym}")
            elif toc is not None and p.relative_to(root).with_suffix("").as_posix() not in toc:
                problems.append(f"{label}: notebook {nb} is not listed in _toc.yml")
    return problems


__all__ = ["TABLES", "FAMILIES", "POLICY", "MODEL", "ACTION_SPACE", "ALGORITHM_COLUMNS", "load_table",
           "resolve_symbol", "check_links"]
