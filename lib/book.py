"""The book's structure: the seed map, the table of contents, the notebooks, and the
contract that ties them together (checked by ``tests/test_contract.py``).

The contract:

* every labelled section ``(seed-…)=`` sits in the chapter folder the seed map names, and the
  label is one of the seed map's;
* no label appears twice;
* every notebook under ``chapters/`` is listed in ``_toc.yml`` (and every TOC entry exists);
* every notebook starts with the same setup cell (:data:`SETUP_CELL`), tagged ``remove-cell``;
* no notebook stores outputs, except cells marked ``keep_output`` (reference values for nbval);
* a notebook's time budget is 90 s unless its metadata declares a larger one with a reason;
* code lines are at most :data:`MAX_CODE_LINE` characters (longer ones scroll sideways);
* every seed in a notebook derives from the ``SEED`` that ``seed_everything`` returned (a
  literal ``seed=3``, ``default_rng(1)`` or ``manual_seed(0)`` is a finding unless the line
  says why it is fixed with a ``# fixed seed: <reason>`` comment, e.g. data tied to a
  shipped checkpoint), so that ``BOOK_SEED_SHIFT`` moves every random stream;
* no markdown uses a TeX macro defined only in ``_config.yml`` (``mathjax3_config``): such a
  macro renders in the built book but not in Jupyter or Colab;
* no ``assert`` on wall-clock time (a line asserting on ``perf_counter``, ``speedup``,
  ``elapsed``, ``seconds`` …): timings are shown, speed is measured in ``bench/``.

Book: seed-1 (and the contract every notebook is tested against).
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import posixpath
import re
from typing import Iterable

from . import ROOT

#: The default execution budget of one notebook on the 2-core CI machine, in seconds.
DEFAULT_BUDGET_S = 90.0
#: The largest budget a notebook may declare (with a reason) in ``metadata.book.budget_s``.
MAX_BUDGET_S = 150.0

#: The repository the Colab/Binder buttons and the setup cell point to (also in _config.yml).
REPO_URL = "https://github.com/llm-rl-visualized-book/llm-rl-book"

#: The first cell of every notebook (tagged ``remove-cell``): makes ``lib`` importable from a
#: checkout, JupyterLab or Colab. It never downloads data or weights; on Colab it clones the
#: book (code, small data, checkpoints) once.
SETUP_CELL = f'''# Book setup (the same in every notebook): make `lib` importable from a checkout,
# JupyterLab or Colab. On Colab it clones the book once; it never downloads data
# or weights.
import pathlib, subprocess, sys

BOOK_REPO = "{REPO_URL}"
_here = pathlib.Path.cwd().resolve()
ROOT = next(
    (p for p in (_here, *_here.parents) if (p / "lib" / "__init__.py").is_file()), None
)
if ROOT is None and "google.colab" in sys.modules:
    ROOT = pathlib.Path("/content/llm-rl-book")
    if not ROOT.exists():
        subprocess.run(
            ["git", "clone", "--depth", "1", BOOK_REPO, str(ROOT)], check=True
        )
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "-e", str(ROOT)], check=True
        )
if ROOT is None:
    raise RuntimeError(
        "Open this notebook from inside the book's folder (or on Colab)."
    )
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import lib

lib.setup_notebook()'''

LABEL_RE = re.compile(r"^\((seed-[0-9][0-9\-]*)\)=", flags=re.M)

#: The longest code line a notebook may have (the book's code column shows about 88).
MAX_CODE_LINE = 88
#: A seed given as a literal number (``seed=3``, ``default_rng(1)``, ``manual_seed(0)``,
#: ``seed_everything(0)`` is the one allowed literal: it is shifted by ``BOOK_SEED_SHIFT``).
LITERAL_SEED_RE = re.compile(
    r"(\bseed\s*=\s*\d|\bdefault_rng\(\s*\d|\bmanual_seed\(\s*\d|\bRandomState\(\s*\d"
    r"|\brandom\.seed\(\s*\d)")
FIXED_SEED_NOTE = "# fixed seed:"
#: An assertion on wall-clock time.
TIME_ASSERT_RE = re.compile(
    r"^\s*assert\b.*\b(perf_counter|monotonic|time\.time|speedup|elapsed|seconds|secs|wall|"
    r"t_\w+|latency|throughput)\b")


def config_macros(root: pathlib.Path) -> list[str]:
    """TeX macros defined in ``_config.yml`` (they work in the built book only)."""
    import yaml

    path = pathlib.Path(root) / "_config.yml"
    if not path.is_file():
        return []
    cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    tex = (((cfg.get("sphinx") or {}).get("config") or {}).get("mathjax3_config") or {}).get("tex") or {}
    return sorted((tex.get("macros") or {}).keys())


def macro_findings(rel: str, cells: list[dict], macros: Iterable[str]) -> list[str]:
    """Markdown cells that use a macro only the book's MathJax configuration defines."""
    out = []
    for i, c in enumerate(cells):
        if c.get("cell_type") != "markdown":
            continue
        for m in macros:
            if re.search(r"\\" + re.escape(m) + r"(?![A-Za-z])", cell_source(c)):
                out.append(f"{rel}: cell {i} uses \\{m}, a macro defined only in _config.yml "
                           "(it does not render in Jupyter or Colab): write it out")
    return out


def code_findings(rel: str, cells: list[dict]) -> list[str]:
    """Style findings in a notebook's code cells (the setup cell excepted): long lines,
    literal seeds without a ``# fixed seed:`` reason, assertions on wall-clock time, a
    ``show_code`` listing that would not be displayed."""
    out = []
    for i, c in enumerate(cells):
        if c.get("cell_type") != "code" or "remove-cell" in c.get("metadata", {}).get("tags", []):
            continue
        for n, line in enumerate(cell_source(c).splitlines(), 1):
            where = f"{rel}: cell {i} line {n}"
            if len(line) > MAX_CODE_LINE:
                out.append(f"{where}: {len(line)} characters (at most {MAX_CODE_LINE})")
            code = line.split("#", 1)[0]
            if LITERAL_SEED_RE.search(code) and FIXED_SEED_NOTE not in line:
                out.append(f"{where}: a literal seed ({line.strip()[:60]}); derive it from SEED "
                           f"or say why it is fixed with '{FIXED_SEED_NOTE} <reason>'")
            if TIME_ASSERT_RE.search(code):
                out.append(f"{where}: asserts on wall-clock time ({line.strip()[:60]}); show "
                           "timings, assert counts/bytes/equalities, measure speed in bench/")
        for n in hidden_show_code(cell_source(c)):
            out.append(f"{rel}: cell {i} line {n}: show_code(...) is not the cell's last statement, so "
                       "its listing is never displayed: wrap it in display(...) or give it its own cell")
    return out


def hidden_show_code(source: str) -> list[int]:
    """Lines of bare ``show_code(...)`` statements that are not the last statement of a cell: a
    notebook displays only the last expression's value, so their listings would not appear."""
    import ast

    try:
        body = ast.parse(source).body
    except SyntaxError:  # IPython magics: nothing to say
        return []
    return [st.lineno for st in body[:-1] if isinstance(st, ast.Expr) and isinstance(st.value, ast.Call)
            and getattr(st.value.func, "id", None) == "show_code"]


@dataclasses.dataclass(frozen=True)
class SeedEntry:
    anchor: str
    part: int
    chapter: str
    label: str
    title_zh: str
    title_en: str | None
    diagram: str
    take: str


def load_seed_map(path: pathlib.Path | str | None = None) -> list[SeedEntry]:
    """The seed map shipped in ``data/seed-map.yml`` (the book's copy of the spec)."""
    import yaml

    path = pathlib.Path(path) if path is not None else ROOT / "data" / "seed-map.yml"
    if not path.is_file():
        raise FileNotFoundError(f"seed map not found at {path}")
    rows = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a list of entries")
    return [SeedEntry(str(r["seed_anchor"]), int(r["part"]), str(r["chapter"]), str(r["label"]),
                      str(r["title_zh"]), r.get("title_en"), str(r["diagram"]), str(r["take"]))
            for r in rows]


def read_notebook(path: pathlib.Path) -> dict:
    try:
        return json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable notebook ({exc})") from exc


def cell_source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def notebook_labels(nb: dict) -> list[str]:
    """The ``(seed-…)=`` targets in a notebook's markdown cells, in order."""
    out = []
    for c in nb.get("cells", []):
        if c.get("cell_type") == "markdown":
            out += LABEL_RE.findall(cell_source(c))
    return out


def find_notebooks(root: pathlib.Path) -> list[pathlib.Path]:
    """All notebooks under ``chapters/`` (checkpoints and build folders excluded), sorted."""
    chapters = pathlib.Path(root) / "chapters"
    return sorted(p for p in chapters.rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in p.parts and "_build" not in p.parts)


def toc_files(root: pathlib.Path) -> list[str]:
    """Every ``file:`` of ``_toc.yml`` (paths without suffix, relative to the root)."""
    import yaml

    toc_path = pathlib.Path(root) / "_toc.yml"
    if not toc_path.is_file():
        raise FileNotFoundError(f"no _toc.yml in {root}")
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    files: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("root", "file"):
                if key in node and isinstance(node[key], str):
                    files.append(str(pathlib.PurePosixPath(node[key]).with_suffix("")))
            for v in node.values():
                if isinstance(v, (list, dict)):
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    return files


def part_first_doc(part: int, root: pathlib.Path | str | None = None,
                   seed_map: Iterable[SeedEntry] | None = None) -> str | None:
    """The first ``_toc.yml`` document (path without suffix) in the chapter folder(s) the seed
    map assigns to seed part ``part``, or ``None`` while that part has no page in the TOC."""
    root = pathlib.Path(root) if root is not None else ROOT
    entries = list(seed_map) if seed_map is not None else load_seed_map(root / "data" / "seed-map.yml")
    folders = sorted({e.chapter for e in entries if e.part == part})
    if not folders:
        raise ValueError(f"no seed entry belongs to part {part!r}")
    prefixes = tuple(f"chapters/{f}/" for f in folders)
    return next((doc for doc in toc_files(root) if doc.startswith(prefixes)), None)


def part_link(part: int, page: str, text: str | None = None, root: pathlib.Path | str | None = None,
              seed_map: Iterable[SeedEntry] | None = None) -> str:
    """Markdown for a mention of seed part ``part`` on the page ``page`` (a TOC path without
    suffix, e.g. ``"chapters/02-llm-basics/pretraining"``): once the part is in the TOC, a link
    to the built HTML of its first document, relative to ``page``; until then the plain
    ``text`` (default ``"Part N"``). Meant for ``lib.glue(key, Markdown(...))`` and
    ``{glue:md}`key``` in the prose: myst-nb renders glued Markdown as CommonMark, where a link
    is used as written, so it must point at the ``.html`` page."""
    text = f"Part {part}" if text is None else str(text)
    doc = part_first_doc(part, root, seed_map)
    if doc is None:
        return text
    here = pathlib.PurePosixPath(page).parent
    target = posixpath.relpath(f"{doc}.html", here.as_posix())
    safe = text.replace("[", "(").replace("]", ")")
    return f"[{safe}]({target})"


def notebook_budget(nb: dict) -> tuple[float, str | None]:
    """A notebook's time budget in seconds and the reason for a budget over the default."""
    meta = nb.get("metadata", {}).get("book", {})
    budget = float(meta.get("budget_s", DEFAULT_BUDGET_S))
    return budget, meta.get("budget_reason")


@dataclasses.dataclass
class BookReport:
    findings: list[str]
    covered: dict[str, str]          # label -> notebook (relative path)
    n_entries: int

    @property
    def ok(self) -> bool:
        return not self.findings

    def coverage_line(self) -> str:
        return f"seed entries covered: {len(self.covered)}/{self.n_entries}"


def check_book(root: pathlib.Path | str | None = None, seed_map: Iterable[SeedEntry] | None = None) -> BookReport:
    """Check the contract over a book tree; returns every finding (empty when all is well)."""
    root = pathlib.Path(root) if root is not None else ROOT
    entries = list(seed_map) if seed_map is not None else load_seed_map(root / "data" / "seed-map.yml")
    chapter_of = {e.label: e.chapter for e in entries}
    findings: list[str] = []
    found: dict[str, list[str]] = {}
    try:
        toc = set(toc_files(root))
    except FileNotFoundError as exc:
        toc = set()
        findings.append(str(exc))
    for entry in toc:
        if not any((root / f"{entry}{ext}").is_file() for ext in (".ipynb", ".md")):
            findings.append(f"_toc.yml lists {entry}, which does not exist")
    macros = config_macros(root)
    for path in find_notebooks(root):
        rel = path.relative_to(root).as_posix()
        try:
            nb = read_notebook(path)
        except ValueError as exc:
            findings.append(str(exc))
            continue
        cells = nb.get("cells", [])
        for lab in notebook_labels(nb):
            found.setdefault(lab, []).append(rel)
        if rel[: -len(".ipynb")] not in toc:
            findings.append(f"{rel}: not listed in _toc.yml")
        code = [c for c in cells if c.get("cell_type") == "code"]
        if not code or cell_source(code[0]).strip() != SETUP_CELL.strip():
            findings.append(f"{rel}: the first code cell is not the book's setup cell (lib.book.SETUP_CELL)")
        elif "remove-cell" not in code[0].get("metadata", {}).get("tags", []):
            findings.append(f"{rel}: the setup cell must be tagged remove-cell")
        stored = [i for i, c in enumerate(cells) if c.get("cell_type") == "code"
                  and (c.get("outputs") or c.get("execution_count"))
                  and not c.get("metadata", {}).get("keep_output")]
        if stored:
            findings.append(f"{rel}: {len(stored)} code cell(s) store outputs without keep_output "
                            f"(cells {stored[:5]}); run `make strip`")
        findings += code_findings(rel, cells)
        findings += macro_findings(rel, cells, macros)
        budget, reason = notebook_budget(nb)
        if budget > DEFAULT_BUDGET_S and not (reason and reason.strip()):
            findings.append(f"{rel}: budget {budget:.0f} s exceeds {DEFAULT_BUDGET_S:.0f} s without a budget_reason")
        if budget > MAX_BUDGET_S:
            findings.append(f"{rel}: budget {budget:.0f} s exceeds the maximum {MAX_BUDGET_S:.0f} s")
    for lab, where in sorted(found.items()):
        if lab not in chapter_of:
            findings.append(f"{lab}: not a label of the seed map (in {where[0]})")
            continue
        if len(where) > 1:
            findings.append(f"{lab}: labelled more than once: {', '.join(where)}")
        for w in where:
            if not w.startswith(f"chapters/{chapter_of[lab]}/"):
                findings.append(f"{lab}: belongs in chapters/{chapter_of[lab]}/, found in {w}")
    covered = {lab: where[0] for lab, where in found.items() if lab in chapter_of}
    return BookReport(findings, covered, len(entries))


#: Modules whose tests live under another name, and why.
MODULE_TEST_ALIASES = {
    "lib/book.py": "test_contract.py",          # the seed-map contract is what lib.book implements
    "lib/llm/pretrain.py": "test_checkpoints.py",  # its recipe is checked by reloading the shipped models
    "lib/llm/export.py": "test_llm_model.py",    # export = equality with transformers' model
    "lib/llm/config.py": "test_llm_model.py",
    "lib/llm/checkpoint.py": "test_checkpoints.py",
    "lib/peft/adapters.py": "test_peft_methods.py",
}


def module_test_candidates(rel: str) -> set[str]:
    """The names a lib module's test file may have (``lib/x/y.py`` -> ``test_y.py``, ``test_x_y.py``)."""
    parts = pathlib.PurePosixPath(rel).with_suffix("").parts[1:]      # drop "lib"
    mod = parts[-1]
    names = {f"test_{mod}.py"}
    if len(parts) >= 2:
        names.add(f"test_{parts[-2]}_{mod}.py")
        names.add(f"test_{parts[-2]}.py" if len(parts) >= 3 else f"test_{parts[-2]}_{mod}.py")
    return names


# ------------------------------------------------------------------ section <-> code <-> test
BOOK_LINE_RE = re.compile(r"^Book:(.*?)(?:\n\s*\n|\Z)", re.M | re.S)
BOOK_LABEL_RE = re.compile(r"\bseed-\d+(?:-\d+)?\b")


def module_book_lines(root: pathlib.Path | str | None = None) -> dict[str, str | None]:
    """Every ``lib`` module (path relative to ``root``) -> the text of its docstring's ``Book:``
    paragraph, or ``None`` when it has none."""
    import ast

    root = pathlib.Path(root) if root is not None else ROOT
    out = {}
    for path in sorted((root / "lib").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        m = BOOK_LINE_RE.search(doc)
        out[rel] = " ".join(m.group(1).split()) if m else None
    return out


def section_spans(nb: dict) -> dict[str, list[dict]]:
    """Each section label of a notebook -> its cells (from its ``(label)=`` target to the next)."""
    spans: dict[str, list[dict]] = {}
    current = None
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            labels = re.findall(r"^\((seed-[0-9-]+)\)=", cell_source(cell), flags=re.M)
            if labels:
                current = labels[-1]
                for lab in labels:
                    spans.setdefault(lab, [])
        if current is not None:
            spans[current].append(cell)
    return spans


def check_code_links(root: pathlib.Path | str | None = None) -> list[str]:
    """The links between sections and their code, both ways.

    * every ``lib`` module except ``__init__``/``__main__`` names the section(s) it serves in a
      ``Book:`` paragraph of its docstring (labels such as ``seed-71``; a module that serves no
      single section says ``Book: infrastructure …`` or ``Book: every …``);
    * every label a module names is a section of the book;
    * every section of the book is named by at least one module;
    * every section shows the core lines of the code it runs (a ``show_code(`` call in one of its
      code cells), unless the notebook's metadata ``book.sections_without_code`` gives the reason
      for that label (e.g. a page drawn from a data table).
    """
    root = pathlib.Path(root) if root is not None else ROOT
    findings: list[str] = []
    sections: dict[str, str] = {}
    for path in find_notebooks(root):
        rel = path.relative_to(root).as_posix()
        nb = read_notebook(path)
        exempt = nb.get("metadata", {}).get("book", {}).get("sections_without_code", {}) or {}
        for lab, cells in section_spans(nb).items():
            sections[lab] = rel
            shows = any(c.get("cell_type") == "code" and "show_code(" in cell_source(c) for c in cells)
            reason = str(exempt.get(lab, "")).strip()
            if not shows and not reason:
                findings.append(f"{rel}: section {lab} shows no lib code (add show_code(...) or give "
                                f"the reason in metadata book.sections_without_code)")
            if shows and reason:
                findings.append(f"{rel}: section {lab} shows code but is listed in sections_without_code")
        for lab in exempt:
            if lab not in section_spans(nb):
                findings.append(f"{rel}: sections_without_code names {lab}, not a section of it")
    named: set[str] = set()
    for rel, text in module_book_lines(root).items():
        name = pathlib.PurePosixPath(rel).name
        if text is None:
            if name not in ("__init__.py", "__main__.py"):
                findings.append(f"{rel}: its docstring has no 'Book:' paragraph naming its section(s)")
            continue
        labels = BOOK_LABEL_RE.findall(text)
        if not labels and not re.match(r"(infrastructure|every)\b", text):
            findings.append(f"{rel}: 'Book:' names no section label (seed-N) and is not "
                            f"'infrastructure' or 'every ...': {text[:60]!r}")
        for lab in labels:
            if lab not in sections:
                findings.append(f"{rel}: 'Book:' names {lab}, which is no section of the book")
        named.update(labels)
    for lab, rel in sorted(sections.items()):
        if lab not in named:
            findings.append(f"{lab} ({rel}): no lib module names this section in its 'Book:' line")
    return findings


def new_notebook(cells: list[tuple[str, str] | tuple[str, str, dict]], metadata: dict | None = None) -> dict:
    """Build a notebook dict: the setup cell first, then ``(kind, source[, cell_metadata])`` cells
    with ``kind`` in {"md", "code"}. Used by ``tools/pynb.py``."""
    def cell(kind, src, meta=None):
        if kind not in ("md", "code"):
            raise ValueError(f"cell kind must be 'md' or 'code', got {kind!r}")
        base = {"cell_type": "markdown" if kind == "md" else "code", "metadata": dict(meta or {}),
                "source": src.strip("\n")}
        if kind == "code":
            base.update(execution_count=None, outputs=[])
        return base

    nb_cells = [cell("code", SETUP_CELL, {"tags": ["remove-cell"]})]
    nb_cells += [cell(*c) for c in cells]
    for i, c in enumerate(nb_cells):
        c["id"] = f"cell-{i:03d}"
    meta = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    meta.update(metadata or {})
    return {"cells": nb_cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}
