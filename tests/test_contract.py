"""The seed-map contract, on the real book and on small temporary books that break it."""
import json
import pathlib
import re

import pytest
import yaml

import lib
from lib import book

ROOT = lib.ROOT


# ------------------------------------------------------------------ the real book

def test_book_satisfies_the_contract():
    report = book.check_book(ROOT)
    assert report.findings == [], "\n".join(report.findings)
    print(report.coverage_line())


def test_seed_map_copy_is_complete():
    entries = book.load_seed_map()
    assert len(entries) == 128
    labels = [e.label for e in entries]
    assert len(set(labels)) == 128
    chapters = sorted({e.chapter for e in entries})
    assert len(chapters) == 11
    for ch in chapters:
        assert (ROOT / "chapters" / ch).is_dir(), f"missing chapter folder {ch}"


def test_seed_map_copy_matches_shared_when_available():
    shared = ROOT.parent / "shared" / "seed" / "seed-map.yml"
    if not shared.is_file():
        pytest.skip("no ../shared checkout beside the book (the book itself uses data/seed-map.yml)")
    assert shared.read_text(encoding="utf-8") == (ROOT / "data" / "seed-map.yml").read_text(encoding="utf-8")


def test_repository_url_in_one_place():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert config["repository"]["url"] == book.REPO_URL
    assert f'BOOK_REPO = "{book.REPO_URL}"' in book.SETUP_CELL
    assert config["launch_buttons"]["colab_url"].startswith("https://colab.research.google.com")


def test_every_notebook_has_sections_with_attribution():
    for path in book.find_notebooks(ROOT):
        nb = book.read_notebook(path)
        md = "\n".join(book.cell_source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
        h1 = re.findall(r"^# ", md, flags=re.M)
        assert len(h1) == 1, f"{path}: needs exactly one H1 title, found {len(h1)}"
        for label in book.notebook_labels(nb):
            assert "LLM-RL-Visualized" in md and "Changye Yu" in md, f"{path}: attribution missing"
        assert "{exercise}" in md, f"{path}: no exercises"


def test_every_bib_file_is_configured_and_keys_unique():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    files = config["bibtex_bibfiles"]
    on_disk = {"references.bib"} | {f"bib/{p.name}" for p in (ROOT / "bib").glob("*.bib")}
    assert set(files) == on_disk
    keys = []
    for f in files:
        keys += re.findall(r"^@\w+\{([^,\s]+),", (ROOT / f).read_text(encoding="utf-8"), flags=re.M)
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    assert not dupes, f"bib keys defined twice: {dupes}"


# ------------------------------------------------------------------ temporary books

ENTRIES = [
    book.SeedEntry("header-1", 1, "01-a", "seed-1", "一", "One", "https://x", "take"),
    book.SeedEntry("header-2", 2, "02-b", "seed-2", "二", "Two", "https://x", "take"),
]


def _write_nb(path: pathlib.Path, labels, setup=True, outputs=False, budget=None):
    cells = [("md", "# Title\n" + "".join(f"\n({lab})=\n## Section\n" for lab in labels)), ("code", "x = 1")]
    nb = book.new_notebook(cells, {"book": budget} if budget else None)
    if not setup:
        nb["cells"][0]["source"] = "import lib"
    if outputs:
        nb["cells"][-1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "1"}]
        nb["cells"][-1]["execution_count"] = 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb), encoding="utf-8")


def _book(tmp_path, notebooks, toc_extra=()):
    (tmp_path / "chapters").mkdir()
    files = []
    for rel, kwargs in notebooks.items():
        _write_nb(tmp_path / rel, **kwargs)
        files.append(rel[: -len(".ipynb")])
    toc = {"format": "jb-book", "root": "intro", "chapters": [{"file": f} for f in files + list(toc_extra)]}
    (tmp_path / "intro.md").write_text("# Intro\n")
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump(toc))
    return tmp_path


def test_good_temporary_book_passes(tmp_path):
    root = _book(tmp_path, {"chapters/01-a/x.ipynb": {"labels": ["seed-1"]},
                            "chapters/02-b/y.ipynb": {"labels": ["seed-2"]}})
    report = book.check_book(root, ENTRIES)
    assert report.ok, report.findings
    assert report.coverage_line() == "seed entries covered: 2/2"


def test_label_in_wrong_chapter_fails(tmp_path):
    root = _book(tmp_path, {"chapters/01-a/x.ipynb": {"labels": ["seed-1", "seed-2"]}})
    findings = book.check_book(root, ENTRIES).findings
    assert any("seed-2: belongs in chapters/02-b/" in f for f in findings), findings


def test_duplicated_label_fails(tmp_path):
    root = _book(tmp_path, {"chapters/01-a/x.ipynb": {"labels": ["seed-1"]},
                            "chapters/01-a/y.ipynb": {"labels": ["seed-1"]}})
    findings = book.check_book(root, ENTRIES).findings
    assert any("seed-1: labelled more than once" in f for f in findings), findings


def test_notebook_missing_from_toc_fails(tmp_path):
    root = _book(tmp_path, {"chapters/01-a/x.ipynb": {"labels": ["seed-1"]}})
    _write_nb(root / "chapters/01-a/orphan.ipynb", labels=[])
    findings = book.check_book(root, ENTRIES).findings
    assert any("orphan.ipynb: not listed in _toc.yml" in f for f in findings), findings


def test_toc_entry_without_file_fails(tmp_path):
    root = _book(tmp_path, {"chapters/01-a/x.ipynb": {"labels": ["seed-1"]}}, toc_extra=["chapters/01-a/ghost"])
    findings = book.check_book(root, ENTRIES).findings
    assert any("ghost, which does not exist" in f for f in findings), findings


def test_unknown_label_setup_cell_outputs_and_budget_fail(tmp_path):
    root = _book(tmp_path, {
        "chapters/01-a/x.ipynb": {"labels": ["seed-99"]},
        "chapters/01-a/y.ipynb": {"labels": [], "setup": False},
        "chapters/01-a/z.ipynb": {"labels": [], "outputs": True},
        "chapters/01-a/w.ipynb": {"labels": [], "budget": {"budget_s": 120}},
        "chapters/01-a/v.ipynb": {"labels": [], "budget": {"budget_s": 400, "budget_reason": "long"}},
    })
    findings = "\n".join(book.check_book(root, ENTRIES).findings)
    assert "seed-99: not a label of the seed map" in findings
    assert "y.ipynb: the first code cell is not the book's setup cell" in findings
    assert "z.ipynb: 1 code cell(s) store outputs" in findings
    assert "w.ipynb: budget 120 s exceeds 90 s without a budget_reason" in findings
    assert "v.ipynb: budget 400 s exceeds the maximum" in findings


def test_keep_output_cells_may_store_outputs(tmp_path):
    root = _book(tmp_path, {"chapters/01-a/x.ipynb": {"labels": ["seed-1"], "outputs": True}})
    path = root / "chapters/01-a/x.ipynb"
    nb = json.loads(path.read_text())
    nb["cells"][-1]["metadata"]["keep_output"] = True
    path.write_text(json.dumps(nb))
    assert book.check_book(root, ENTRIES).ok


def test_notebook_budget_default_and_declared():
    assert book.notebook_budget({"metadata": {}}) == (90.0, None)
    assert book.notebook_budget({"metadata": {"book": {"budget_s": 150, "budget_reason": "r"}}}) == (150.0, "r")


def test_new_notebook_validates_kind():
    with pytest.raises(ValueError, match="cell kind"):
        book.new_notebook([("python", "x")])


def test_missing_seed_map_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="seed map not found"):
        book.load_seed_map(tmp_path / "nope.yml")


def _code_cell_book(tmp_path, source):
    tmp_path.mkdir(parents=True, exist_ok=True)
    root = _book(tmp_path, {"chapters/01-a/x.ipynb": {"labels": ["seed-1"]}})
    path = root / "chapters/01-a/x.ipynb"
    nb = json.loads(path.read_text())
    nb["cells"][-1]["source"] = source
    path.write_text(json.dumps(nb))
    return "\n".join(book.check_book(root, ENTRIES).findings)


def test_long_code_lines_fail(tmp_path):
    found = _code_cell_book(tmp_path, "x = 1\ny = '" + "a" * 90 + "'")
    assert "cell 2 line 2: 96 characters (at most 88)" in found


@pytest.mark.parametrize("line", ["env.reset(seed=0)", "rng = np.random.default_rng(1)",
                                  "torch.manual_seed(3)", "run(cfg, seed = 12)"])
def test_literal_seeds_fail_unless_explained(tmp_path, line):
    assert "a literal seed" in _code_cell_book(tmp_path, line)
    ok = _code_cell_book(tmp_path / "b", line + "  # fixed seed: the shipped checkpoint's data")
    assert "a literal seed" not in ok
    assert "a literal seed" not in _code_cell_book(tmp_path / "c", "run(seed=SEED + 1)")
    assert "a literal seed" not in _code_cell_book(tmp_path / "d", "SEED = lib.seed_everything(0)")


@pytest.mark.parametrize("line", ["assert speedup > 1.5", "assert t_back[-1] < t_fwd[-1]",
                                  "assert time.perf_counter() - t0 < 3"])
def test_wall_clock_asserts_fail(tmp_path, line):
    assert "asserts on wall-clock time" in _code_cell_book(tmp_path, line)
    assert "wall-clock" not in _code_cell_book(tmp_path / "b", "assert n_tokens == 12")


def test_hidden_show_code_fails(tmp_path):
    src = "show_code(f, test='t.py')\nshow_code(g)"
    assert "cell 2 line 1: show_code(...) is not the cell's last statement" in _code_cell_book(tmp_path, src)
    ok = "display(show_code(f))\nshow_code(g)"
    assert "show_code" not in _code_cell_book(tmp_path / "b", ok)


def test_config_only_macros_fail(tmp_path):
    root = _book(tmp_path, {"chapters/01-a/x.ipynb": {"labels": ["seed-1"]}})
    (root / "_config.yml").write_text(yaml.safe_dump(
        {"sphinx": {"config": {"mathjax3_config": {"tex": {"macros": {"E": "\\mathbb{E}"}}}}}}))
    assert book.config_macros(root) == ["E"]
    assert book.check_book(root, ENTRIES).ok
    path = root / "chapters/01-a/x.ipynb"
    nb = json.loads(path.read_text())
    nb["cells"][1]["source"] += "\n$\\E[X] = \\Eta$"
    path.write_text(json.dumps(nb))
    findings = book.check_book(root, ENTRIES).findings
    assert len(findings) == 1 and "uses \\E, a macro defined only in _config.yml" in findings[0]


# ------------------------------------------------------------------ section <-> code <-> test

def test_every_section_links_to_its_code_and_every_module_to_its_sections():
    findings = book.check_code_links(ROOT)
    assert findings == [], "\n".join(findings)


def _code_book(tmp_path, module_doc, cells, metadata=None):
    (tmp_path / "lib").mkdir(parents=True)
    (tmp_path / "lib" / "__init__.py").write_text('"""No Book line needed in a package index."""\n')
    (tmp_path / "lib" / "algo.py").write_text(f'"""{module_doc}"""\n')
    nb = book.new_notebook(cells, metadata)
    path = tmp_path / "chapters" / "01-a" / "x.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(nb), encoding="utf-8")
    return tmp_path


SECTION = "(seed-1)=\n## Section\n"


def test_code_links_pass_when_both_directions_hold(tmp_path):
    root = _code_book(tmp_path, "An algorithm.\n\nBook: seed-1.\n",
                      [("md", SECTION), ("code", "show_code(f)")])
    assert book.check_code_links(root) == []


def test_code_links_catch_each_broken_direction(tmp_path):
    root = _code_book(tmp_path, "An algorithm without its section.\n", [("md", SECTION), ("code", "x = 1")])
    findings = book.check_code_links(root)
    assert any("lib/algo.py: its docstring has no 'Book:'" in f for f in findings), findings
    assert any("section seed-1 shows no lib code" in f for f in findings), findings
    assert any("seed-1 (chapters/01-a/x.ipynb): no lib module names" in f for f in findings), findings


def test_code_links_reject_unknown_labels_and_vague_lines(tmp_path):
    root = _code_book(tmp_path, "x\n\nBook: seed-1, seed-99.\n", [("md", SECTION), ("code", "show_code(f)")])
    assert any("names seed-99, which is no section" in f for f in book.check_code_links(root))
    (root / "lib" / "algo.py").write_text('"""x\n\nBook: somewhere.\n"""\n')
    assert any("names no section label" in f for f in book.check_code_links(root))
    (root / "lib" / "algo.py").write_text('"""x\n\nBook: infrastructure.\n"""\n')
    assert any("no lib module names" in f for f in book.check_code_links(root))


def test_sections_without_code_need_a_reason_and_a_real_label(tmp_path):
    meta = {"book": {"sections_without_code": {"seed-1": "a timeline drawn from a data table"}}}
    root = _code_book(tmp_path, "x\n\nBook: seed-1.\n", [("md", SECTION), ("code", "x = 1")], meta)
    assert book.check_code_links(root) == []
    meta["book"]["sections_without_code"] = {"seed-1": "reason", "seed-7": "typo"}
    root2 = _code_book(tmp_path / "b", "x\n\nBook: seed-1.\n", [("md", SECTION), ("code", "show_code(f)")],
                       meta)
    findings = book.check_code_links(root2)
    assert any("shows code but is listed" in f for f in findings), findings
    assert any("names seed-7, not a section" in f for f in findings), findings


def test_only_targets_are_labels_not_mentions():
    """A section label is a ``(seed-N)=`` target; a mention of seed-4 in prose or a {ref} is not."""
    nb = {"cells": [{"cell_type": "markdown", "source": "(seed-7)=\n## T\n\nsee seed-4 and {ref}`seed-5`"}]}
    assert book.notebook_labels(nb) == ["seed-7"]
    assert book.BOOK_LABEL_RE.findall("Book: seed-7, seed-1-5.") == ["seed-7", "seed-1-5"]
