"""lib.bookindex: the index, glossary, bibliography and citation checks (Part 11)."""
import json
import pathlib
import shutil

import pytest

from lib import ROOT, bookindex
from lib.book import SETUP_CELL, check_book


@pytest.fixture(scope="module")
def rows():
    return bookindex.index_rows()


def test_one_row_per_seed_entry_and_links_resolve(rows):
    assert len(rows) == 128 and len({r.label for r in rows}) == 128
    assert bookindex.check_index(rows) == []
    written = {r.label for r in rows if r.notebook}
    assert written == set(check_book().covered)


def test_rows_name_the_code_behind_a_known_section(rows):
    lora = next(r for r in rows if r.notebook == "chapters/03-sft/lora" and "lib/peft/lora.py" in r.modules)
    assert any(t.startswith("tests/") and (ROOT / t).is_file() for t in lora.tests)
    assert lora.shown, "the LoRA section shows its code"


def test_section_href_is_relative_to_the_page(rows):
    row = next(r for r in rows if r.notebook == "chapters/03-sft/lora")
    assert bookindex.section_href(row, "chapters/11-appendix/book-index") == f"../03-sft/lora.html#{row.label}"
    unwritten = bookindex.IndexRow("seed-999", 9, "x", None, None, None, (), (), ())
    assert bookindex.section_href(unwritten, "chapters/11-appendix/book-index") is None
    html = bookindex.index_html([row, unwritten], "chapters/11-appendix/book-index")
    assert f'href="../03-sft/lora.html#{row.label}"' in html and "not yet written" in html
    assert html.count("<tr>") == 3            # header + two rows


def _mini_book(tmp_path: pathlib.Path, label: str = "seed-12", module_label: str = "seed-12"):
    """A copy of the book's structure files with one notebook, for the failure cases."""
    (tmp_path / "data").mkdir()
    shutil.copy(ROOT / "data" / "seed-map.yml", tmp_path / "data" / "seed-map.yml")
    (tmp_path / "chapters" / "03-sft").mkdir(parents=True)
    (tmp_path / "lib").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "lib" / "mod.py").write_text(f'"""Doc.\n\nBook: {module_label}.\n"""\n')
    (tmp_path / "tests" / "test_mod.py").write_text("")
    nb = {"cells": [{"cell_type": "code", "source": SETUP_CELL, "metadata": {"tags": ["remove-cell"]},
                     "outputs": [], "execution_count": None},
                    {"cell_type": "markdown", "source": f"({label})=\n## T", "metadata": {}},
                    {"cell_type": "code", "source": 'show_code(f, test="tests/test_gone.py")',
                     "metadata": {}, "outputs": [], "execution_count": None}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "chapters" / "03-sft" / "x.ipynb").write_text(json.dumps(nb))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nparts:\n  - chapters:\n"
                                       "      - file: chapters/03-sft/x\n")
    return tmp_path


def test_check_index_reports_a_missing_test_and_a_section_without_module(tmp_path):
    root = _mini_book(tmp_path, module_label="seed-13")
    rows = bookindex.index_rows(root)
    findings = bookindex.check_index(rows, root)
    assert any("seed-12: no lib module names it" in f for f in findings)
    assert any("tests/test_gone.py does not exist" in f for f in findings)


def test_glossary_is_bilingual_unique_and_sorted():
    terms = bookindex.glossary_terms()
    assert len(terms) >= 40
    assert bookindex.check_glossary(terms) == []
    assert bookindex.check_glossary([("b", "乙"), ("a", "甲")]) == ["glossary: terms are not in alphabetical order"]
    assert "no Chinese equivalent" in bookindex.check_glossary([("a", "alpha")])[0]
    assert "twice" in bookindex.check_glossary([("a", "甲"), ("a", "甲")])[0]


def test_glossary_rejects_a_term_without_translation(tmp_path):
    p = tmp_path / "g.md"
    p.write_text("# G\n\n```{glossary}\nAlpha\n  a letter.\n```\n")
    with pytest.raises(ValueError, match="English · 中文"):
        bookindex.glossary_terms(p)
    p.write_text("# G\n\nno block\n")
    with pytest.raises(ValueError, match="glossary"):
        bookindex.glossary_terms(p)


def test_every_citation_resolves_and_every_bib_file_parses():
    db = bookindex.bib_database()
    assert len(db) > 100
    assert bookindex.check_citations() == []
    assert set(bookindex.citations()) <= set(db)


def test_bib_database_rejects_duplicates_and_bad_syntax(tmp_path):
    (tmp_path / "_config.yml").write_text("bibtex_bibfiles:\n  - a.bib\n  - b.bib\n")
    entry = "@misc{k1, title={T}, year={2020}}\n"
    (tmp_path / "a.bib").write_text(entry)
    (tmp_path / "b.bib").write_text(entry)
    with pytest.raises(ValueError, match="defined in both a.bib and b.bib"):
        bookindex.bib_database(tmp_path)
    (tmp_path / "b.bib").write_text("@misc{k2, title={T}, year={2020}\n")      # unclosed
    with pytest.raises(ValueError, match="b.bib: not valid BibTeX"):
        bookindex.bib_database(tmp_path)


def test_citation_bibtex_parses_with_required_fields():
    entries = bookindex.citation_entries()
    assert set(entries) == {"llmrlcomputed2026", "yu2025largemodel_en", "yu2025llmrlvisualized"}
    book = entries["yu2025largemodel_en"]
    assert book["type"] == "book" and book["fields"]["year"] == "2025"
    assert book["persons"]["author"] == ["Yu, Changye"]
    with pytest.raises(ValueError, match="BibTeX"):
        bookindex.citation_entries("@book{x, title={unclosed}")
    with pytest.raises(ValueError, match="at least one entry"):
        bookindex.citation_entries("no entries here")
    with pytest.raises(ValueError, match="at least one entry"):
        bookindex.citation_entries("")


def test_citations_ignore_roles_written_about_in_code(tmp_path):
    (tmp_path / "chapters" / "01-x").mkdir(parents=True)
    (tmp_path / "chapters" / "01-x" / "p.md").write_text(
        "Use the `{cite}` role as {cite}`a2020,b2021`; in code: `` {cite}`zz` ``.\n"
        "```\n{cite}`inside`\n```\n{cite:p}`c2022`\n")
    assert sorted(bookindex.citations(tmp_path)) == ["a2020", "b2021", "c2022"]


def test_reverse_index_and_its_validation(rows):
    labels = bookindex.sections_of_module(rows, "lib/peft/lora.py")
    assert labels and all(next(r for r in rows if r.label == lab).notebook for lab in labels)
    with pytest.raises(ValueError, match="module path"):
        bookindex.sections_of_module(rows, "peft.lora")


def test_format_references_renders_every_entry():
    refs = bookindex.format_references()
    assert set(refs) == set(bookindex.citation_entries())
    assert refs["yu2025largemodel_en"].startswith("Changye Yu. Large Model Algorithms")
    assert "\\url" not in " ".join(refs.values())
    with pytest.raises(ValueError, match="BibTeX"):
        bookindex.format_references("@misc{x, title={y}")


def test_missing_fields():
    assert bookindex.missing_fields("book", {"title": "T", "publisher": "P", "year": "2020",
                                             "author": "A"}) == set()
    assert bookindex.missing_fields("misc", {"title": "T", "year": " "}) == {"year", "url", "author"}
    assert bookindex.missing_fields("book", {"title": "T", "publisher": "P", "year": "1",
                                             "editor": "E"}) == set()
    for key, e in bookindex.citation_entries().items():
        assert bookindex.missing_fields(e["type"], {**e["fields"], "author": e["persons"]["author"]}) == set()
    with pytest.raises(ValueError, match="unknown entry type"):
        bookindex.missing_fields("thesis", {})
