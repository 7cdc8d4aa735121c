"""The book's index and citation pages (Part 11), computed from the book itself.

* :func:`index_rows` joins the seed map, the table of contents, the notebooks and ``lib``: for
  every seed entry its Chinese and English titles, the section that computes it (notebook and
  label), the original diagram, the ``lib`` modules whose ``Book:`` paragraph names it, the
  objects its section shows with ``show_code`` and the tests named there and for those modules.
  :func:`check_index` proves every link: each written entry's label sits in a notebook of the
  table of contents, each module and test file exists, each shown object is importable.
* :func:`glossary_terms` reads the glossary (``English · 中文`` terms) and checks it.
* :func:`bib_database` parses every BibTeX file the book lists in ``_config.yml`` with pybtex
  (the parser Sphinx's bibliography uses) and :func:`check_citations` finds every ``{cite}`` role
  in the chapters whose key is in none of them, and every written part that cites nothing.
* :data:`CITATION_BIBTEX` holds the entries for citing this book and the original work;
  :func:`citation_entries` parses them.

Book: seed-122, seed-123, seed-124, seed-125.
"""
from __future__ import annotations

import ast
import dataclasses
import html
import pathlib
import posixpath
import re

from . import ROOT
from .book import (REPO_URL, cell_source, find_notebooks, load_seed_map, module_book_lines,
                   module_test_candidates, read_notebook, section_spans, toc_files, BOOK_LABEL_RE,
                   MODULE_TEST_ALIASES)

__all__ = ["IndexRow", "index_rows", "check_index", "section_href", "index_html", "glossary_terms",
           "check_glossary", "bib_files", "bib_database", "cited_keys", "citations", "check_citations",
           "CITATION_BIBTEX", "citation_entries", "format_references", "REQUIRED_FIELDS",
           "missing_fields", "sections_of_module"]

#: A ``{cite}`` role (also ``{cite:p}``, ``{cite:t}`` …) and its comma-separated keys.
CITE_RE = re.compile(r"\{cite(?::[a-z]+)?\}$")
FENCE_RE = re.compile(r"^```.*?^```", re.S | re.M)
TICKS_RE = re.compile(r"`+")


def cited_keys(text: str) -> list[str]:
    """The keys of every ``{cite}`…``` role in Markdown text, in order. A role is the text
    ``{cite}`` (or ``{cite:p}`` …) directly before a code span; roles written about inside code
    (a fenced block, or a code span such as ```` ``{cite}`key` `` ````) are not citations."""
    text = FENCE_RE.sub("", text)
    keys, pos, last_end = [], 0, 0
    while (m := TICKS_RE.search(text, pos)) is not None:
        n = len(m.group())
        close = re.compile(r"(?<!`)`{%d}(?!`)" % n).search(text, m.end())
        if close is None:                  # an unmatched run of backticks is literal text
            pos = m.end()
            continue
        role = CITE_RE.search(text, last_end, m.start())
        if role is not None:
            keys += [k.strip() for k in text[m.end():close.start()].split(",") if k.strip()]
        pos = last_end = close.end()
    return keys


@dataclasses.dataclass(frozen=True)
class IndexRow:
    """One seed entry as the index shows it."""

    label: str
    part: int
    title_zh: str
    title_en: str | None
    diagram: str | None           # None for the seed's closing entries, which have no diagram
    notebook: str | None          # path without suffix, relative to the root; None = not written yet
    modules: tuple[str, ...]       # lib modules whose Book paragraph names the label
    shown: tuple[str, ...]         # the objects its section shows with show_code (source text)
    tests: tuple[str, ...]         # test files: those show_code names, then the modules' own


def _show_code_calls(cells: list[dict]) -> list[tuple[str, str | None]]:
    """``(object expression, test path or None)`` of every ``show_code(...)`` call in the cells."""
    out = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        src = cell_source(cell)
        if "show_code(" not in src:
            continue
        try:
            tree = ast.parse("\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("%", "!"))))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None))
                    == "show_code" and node.args):
                test = next((kw.value.value for kw in node.keywords if kw.arg == "test"
                             and isinstance(kw.value, ast.Constant)), None)
                out.append((ast.unparse(node.args[0]), test))
    return out


def module_tests(rel: str, root: pathlib.Path) -> list[str]:
    """The test files of one lib module that exist (by the layout rule of ``tests/test_layout.py``)."""
    if rel in MODULE_TEST_ALIASES:
        names = {MODULE_TEST_ALIASES[rel]}
    else:
        names = module_test_candidates(rel)
    return sorted(f"tests/{n}" for n in names if (root / "tests" / n).is_file())


def index_rows(root: pathlib.Path | str | None = None) -> list[IndexRow]:
    """One row per seed entry, in seed order (see the module docstring)."""
    root = pathlib.Path(root) if root is not None else ROOT
    toc = set(toc_files(root))
    where: dict[str, str] = {}
    spans: dict[str, list[dict]] = {}
    for path in find_notebooks(root):
        rel = path.relative_to(root).with_suffix("").as_posix()
        if rel not in toc:
            continue
        for lab, cells in section_spans(read_notebook(path)).items():
            where[lab] = rel
            spans[lab] = cells
    modules: dict[str, list[str]] = {}
    for rel, line in module_book_lines(root).items():
        for lab in BOOK_LABEL_RE.findall(line or ""):
            modules.setdefault(lab, []).append(rel)
    rows = []
    for e in load_seed_map(root / "data" / "seed-map.yml"):
        calls = _show_code_calls(spans.get(e.label, []))
        mods = tuple(sorted(set(modules.get(e.label, []))))
        tests = [t for _, t in calls if t]
        for m in mods:
            tests += module_tests(m, root)
        diagram = e.diagram if e.diagram and e.diagram != "None" else None
        rows.append(IndexRow(e.label, e.part, e.title_zh, e.title_en, diagram, where.get(e.label),
                             mods, tuple(dict.fromkeys(c for c, _ in calls)),
                             tuple(dict.fromkeys(tests))))
    return rows


def check_index(rows: list[IndexRow], root: pathlib.Path | str | None = None) -> list[str]:
    """Every link the index makes resolves; returns the findings (empty when all is well).

    A written entry's notebook exists, is in the table of contents and carries the label; it has
    a module and at least one test behind it; every module and test file exists; a section that
    shows code names a test for it.
    """
    root = pathlib.Path(root) if root is not None else ROOT
    toc = set(toc_files(root))
    findings = []
    labels_of: dict[str, set[str]] = {}
    for r in rows:
        if r.notebook is None:
            continue
        nb_path = root / f"{r.notebook}.ipynb"
        if r.notebook not in toc or not nb_path.is_file():
            findings.append(f"{r.label}: {r.notebook} is not a notebook of the table of contents")
            continue
        if r.notebook not in labels_of:
            labels_of[r.notebook] = set(section_spans(read_notebook(nb_path)))
        if r.label not in labels_of[r.notebook]:
            findings.append(f"{r.label}: no ({r.label})= target in {r.notebook}")
        if not r.modules:
            findings.append(f"{r.label}: no lib module names it in a Book: paragraph")
        if not r.tests:
            findings.append(f"{r.label}: no test file behind it")
        for m in r.modules:
            if not (root / m).is_file():
                findings.append(f"{r.label}: module {m} does not exist")
        for t in r.tests:
            if not (root / t).is_file():
                findings.append(f"{r.label}: test {t} does not exist")
    return findings


def section_href(row: IndexRow, from_page: str) -> str | None:
    """The relative HTML link from the page ``from_page`` (path without suffix) to the section."""
    if row.notebook is None:
        return None
    rel = posixpath.relpath(row.notebook, posixpath.dirname(from_page))
    return f"{rel}.html#{row.label}"


def index_html(rows: list[IndexRow], from_page: str, repo_url: str = REPO_URL) -> str:
    """The index as one HTML table: part, label, titles linked to the section, diagram, code, tests."""
    def code_link(path: str) -> str:
        return f'<a href="{html.escape(repo_url)}/blob/main/{html.escape(path)}"><code>{html.escape(path)}</code></a>'

    out = ['<div style="overflow-x:auto"><table class="book-index" style="font-size:0.8em">',
           "<thead><tr><th>part</th><th>entry</th><th>section · 中文</th><th>diagram</th>"
           "<th>lib code</th><th>tests</th></tr></thead><tbody>"]
    for r in rows:
        title = html.escape(r.title_en or r.title_zh)
        zh = f" · {html.escape(r.title_zh)}" if r.title_en else ""
        href = section_href(r, from_page)
        name = f'<a href="{html.escape(href)}">{title}</a>' if href else f"{title} <em>(not yet written)</em>"
        shown = "".join(f"<br><code>{html.escape(s)}</code>" for s in r.shown)
        diag = f'<a href="{html.escape(r.diagram)}">diagram</a>' if r.diagram else "—"
        out.append(
            f"<tr><td>{r.part}</td><td><code>{r.label}</code></td><td>{name}{zh}</td>"
            f"<td>{diag}</td>"
            f"<td>{'<br>'.join(code_link(m) for m in r.modules)}{shown}</td>"
            f"<td>{'<br>'.join(code_link(t) for t in r.tests)}</td></tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def sections_of_module(rows: list[IndexRow], module: str) -> list[str]:
    """The reverse index: the labels of the written sections a lib module serves, in seed order."""
    if not isinstance(module, str) or not module.startswith("lib/") or not module.endswith(".py"):
        raise ValueError(f"expected a module path such as 'lib/peft/lora.py', got {module!r}")
    return [r.label for r in rows if r.notebook and module in r.modules]


# ------------------------------------------------------------------ glossary
TERM_RE = re.compile(r"^(\S[^\n·]*?)\s+·\s+(\S.*)$")


def glossary_terms(path: pathlib.Path | str | None = None) -> list[tuple[str, str]]:
    """``(English, 中文)`` of every term of the glossary page's ``{glossary}`` block, in order."""
    path = pathlib.Path(path) if path is not None else ROOT / "chapters" / "11-appendix" / "glossary.md"
    text = path.read_text(encoding="utf-8")
    m = re.search(r"```\{glossary\}\n(.*?)\n```", text, re.S)
    if not m:
        raise ValueError(f"{path}: no ```{{glossary}} block")
    terms = []
    for line in m.group(1).splitlines():
        if line and not line[0].isspace():
            t = TERM_RE.match(line.strip())
            if not t:
                raise ValueError(f"{path}: term line {line!r} is not 'English · 中文'")
            terms.append((t.group(1).strip(), t.group(2).strip()))
    return terms


def check_glossary(terms: list[tuple[str, str]]) -> list[str]:
    """Each term has a Chinese equivalent, appears once, and the list is in alphabetical order."""
    findings = []
    en = [t[0] for t in terms]
    for a, z in terms:
        if not re.search(r"[\u4e00-\u9fff]", z):
            findings.append(f"glossary: {a!r} has no Chinese equivalent ({z!r})")
    dup = sorted({a for a in en if en.count(a) > 1})
    if dup:
        findings.append(f"glossary: terms listed twice: {dup}")
    if [a.lower() for a in en] != sorted(a.lower() for a in en):
        findings.append("glossary: terms are not in alphabetical order")
    return findings


# ------------------------------------------------------------------ bibliography
def bib_files(root: pathlib.Path | str | None = None) -> list[str]:
    """The BibTeX files ``_config.yml`` lists (``bibtex_bibfiles``), relative to the root."""
    import yaml

    root = pathlib.Path(root) if root is not None else ROOT
    cfg = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    files = (cfg.get("sphinx", {}).get("config", {}) or {}).get("bibtex_bibfiles") or cfg.get("bibtex_bibfiles")
    if not files:
        raise ValueError(f"{root / '_config.yml'}: no bibtex_bibfiles")
    return list(files)


def bib_database(root: pathlib.Path | str | None = None) -> dict[str, dict]:
    """Every entry of every listed BibTeX file, parsed with pybtex: ``key -> {"file", "type",
    "fields", "persons"}``. A file that does not parse, or a key defined twice (in one file or
    across files), raises ``ValueError`` naming it."""
    from pybtex.database import parse_file
    from pybtex.database.input.bibtex import PybtexSyntaxError
    from pybtex.errors import set_strict_mode

    root = pathlib.Path(root) if root is not None else ROOT
    set_strict_mode(True)
    out: dict[str, dict] = {}
    for rel in bib_files(root):
        try:
            data = parse_file(str(root / rel), bib_format="bibtex")
        except (PybtexSyntaxError, Exception) as exc:   # pybtex raises several types for bad input
            raise ValueError(f"{rel}: not valid BibTeX ({exc})") from exc
        for key, entry in data.entries.items():
            if key in out:
                raise ValueError(f"BibTeX key {key!r} is defined in both {out[key]['file']} and {rel}")
            out[key] = {"file": rel, "type": entry.type, "fields": dict(entry.fields),
                        "persons": {r: [str(p) for p in ps] for r, ps in entry.persons.items()}}
    return out


def citations(root: pathlib.Path | str | None = None) -> dict[str, list[str]]:
    """Every key cited with a ``{cite}`` role in the chapters (notebooks and Markdown pages) ->
    the files citing it."""
    root = pathlib.Path(root) if root is not None else ROOT
    out: dict[str, list[str]] = {}
    paths = list(find_notebooks(root)) + sorted((root / "chapters").rglob("*.md"))
    for path in paths:
        rel = path.relative_to(root).as_posix()
        if path.suffix == ".ipynb":
            text = "\n".join(cell_source(c) for c in read_notebook(path).get("cells", [])
                             if c.get("cell_type") == "markdown")
        else:
            text = path.read_text(encoding="utf-8")
        for key in cited_keys(text):
            if rel not in out.setdefault(key, []):
                out[key].append(rel)
    return out


def check_citations(root: pathlib.Path | str | None = None) -> list[str]:
    """Unresolved citations (a cited key in no BibTeX file) and written parts that cite nothing."""
    root = pathlib.Path(root) if root is not None else ROOT
    db = bib_database(root)
    cited = citations(root)
    findings = [f"{key}: cited in {', '.join(files)} but defined in no BibTeX file"
                for key, files in sorted(cited.items()) if key not in db]
    citing_chapters = {f.split("/")[1] for files in cited.values() for f in files}
    written = {p.parent.name for p in find_notebooks(root)}
    for chapter in sorted(written - citing_chapters):
        findings.append(f"chapters/{chapter}: has notebooks but cites nothing")
    return findings


# ------------------------------------------------------------------ citing the book
#: How to cite this book and the work it follows (the original's entry as its author asks for it).
CITATION_BIBTEX = r"""@misc{llmrlcomputed2026,
  title        = {{LLM} \& {RL}, {Computed}: an executable book after {LLM-RL-Visualized}},
  author       = {{The executable-book authors}},
  year         = {2026},
  url          = {@REPO@},
  note         = {Jupyter Book; every figure computed and every result asserted in the run}
}

@book{yu2025largemodel_en,
  title     = {Large Model Algorithms: Reinforcement Learning, Fine-Tuning, and Alignment},
  author    = {Yu, Changye},
  publisher = {Publishing House of Electronics Industry},
  year      = {2025},
  address   = {Beijing},
  isbn      = {9787121500725},
  url       = {https://github.com/changyeyu/LLM-RL-Visualized},
  language  = {en}
}

@misc{yu2025llmrlvisualized,
  title        = {{LLM-RL-Visualized}: diagrams of large-model and reinforcement-learning algorithms},
  author       = {Yu, Changye},
  year         = {2025},
  url          = {https://github.com/changyeyu/LLM-RL-Visualized}
}
""".replace("@REPO@", REPO_URL)


def citation_entries(text: str = CITATION_BIBTEX) -> dict[str, dict]:
    """Parse BibTeX text strictly with pybtex: ``key -> {"type", "fields", "persons"}``; raises
    ``ValueError`` on text that is not valid BibTeX or has no entry."""
    from pybtex.database import parse_string
    from pybtex.errors import set_strict_mode

    if not isinstance(text, str) or not text.strip():
        raise ValueError("expected BibTeX text with at least one entry")
    set_strict_mode(True)
    try:
        data = parse_string(text, bib_format="bibtex")
    except Exception as exc:        # pybtex raises several types for bad input
        raise ValueError(f"not valid BibTeX: {exc}") from exc
    if not data.entries:
        raise ValueError("expected BibTeX text with at least one entry, found none")
    return {k: {"type": e.type, "fields": dict(e.fields),
                "persons": {r: [str(p) for p in ps] for r, ps in e.persons.items()}}
            for k, e in data.entries.items()}


def format_references(text: str = CITATION_BIBTEX, style: str = "plain") -> dict[str, str]:
    """Each entry of BibTeX ``text`` as a plain-text reference (pybtex's ``style``, the book
    bibliography's style by default): ``key -> "Author. Title. Publisher, year. …"``."""
    from pybtex.database import parse_string
    from pybtex.plugin import find_plugin

    citation_entries(text)                          # validates, with a clear error
    formatter = find_plugin("pybtex.style.formatting", style)()
    backend = find_plugin("pybtex.backends", "text")()
    data = parse_string(text, bib_format="bibtex")
    return {e.key: e.text.render(backend) for e in formatter.format_entries(data.entries.values())}


#: The fields each entry type needs for a usable reference (BibTeX's required fields, and for
#: ``misc`` a title, a year and where to find it).
REQUIRED_FIELDS = {
    "article": {"title", "journal", "year"},
    "book": {"title", "publisher", "year"},
    "inproceedings": {"title", "booktitle", "year"},
    "misc": {"title", "year", "url"},
}


def missing_fields(entry_type: str, fields) -> set[str]:
    """The required fields (:data:`REQUIRED_FIELDS`) that ``fields`` lacks or leaves empty; an
    author (or editor) is required too and is passed among ``fields`` as ``author``."""
    if entry_type not in REQUIRED_FIELDS:
        raise ValueError(f"unknown entry type {entry_type!r}: expected one of {sorted(REQUIRED_FIELDS)}")
    present = {k.lower() for k, v in dict(fields).items() if str(v).strip()}
    need = REQUIRED_FIELDS[entry_type] | {"author"}
    if "editor" in present:
        need = need - {"author"}
    return need - present
