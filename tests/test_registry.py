"""The chapter's data tables (history of RL, algorithm registry) are well formed and their links resolve."""
import pathlib

import pytest

from lib.registry import check_links, load_table, resolve_symbol


@pytest.mark.parametrize("name", ["history", "algorithms"])
def test_tables_load_and_links_resolve(name):
    rows = load_table(name)
    assert len(rows) >= 15
    assert check_links(rows) == []
    keys = {r["paper"] if name == "history" else r["bib"] for r in rows} - {""}
    root = pathlib.Path(__file__).resolve().parent.parent
    text = "".join(p.read_text(encoding="utf-8") for p in [root / "references.bib", *(root / "bib").glob("*.bib")])
    missing = [k for k in keys if "{" + k + "," not in text]
    assert missing == [], f"bib keys without an entry in the book's .bib files: {missing}"


def test_history_sorted():
    years = [r["year"] for r in load_table("history")]
    assert years == sorted(years)


def test_algorithm_fields():
    for r in load_table("algorithms"):
        assert r["model"] in {"model-free", "model-based"}
        assert r["policy"] in {"on-policy", "off-policy", "offline", "n/a"}


def test_check_links_reports_problems(tmp_path):
    rows = [{"name": "x", "lib_symbol": "lib.rl.mc_td.no_such_thing", "notebook": ""},
            {"name": "y", "lib_symbol": "lib.rl.mc_td.sarsa", "notebook": "chapters/none.ipynb"},
            {"name": "z", "lib_symbol": "", "notebook": "README.md"}]
    problems = check_links(rows, root=tmp_path)
    assert len(problems) == 3
    with pytest.raises(ValueError):
        load_table("nope")
    with pytest.raises(ValueError):
        resolve_symbol("nodots")
    bad = tmp_path / "t.csv"
    bad.write_text("year,milestone\nabc,x\n")
    with pytest.raises(ValueError, match="year"):
        load_table("history", path=bad)


@pytest.mark.parametrize("name", ["history", "algorithms"])
def test_sidecar_describes_the_columns(name):
    import csv
    import json

    from lib import DATA_DIR
    from lib.registry import TABLES
    csv_path = DATA_DIR / TABLES[name]
    meta = json.loads(csv_path.with_suffix(".json").read_text(encoding="utf-8"))
    with csv_path.open(encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert meta["file"] == csv_path.name and list(meta["columns"]) == header


def test_history_links_what_the_book_implements():
    from lib.registry import check_history

    history, algorithms = load_table("history"), load_table("algorithms")
    assert check_history(history, algorithms) == []
    linked = {r["paper"] for r in history if r["lib_symbol"]}
    assert {"mnih2015humanlevel", "schulman2017proximal", "shao2024deepseekmath", "williams1992simple"} <= linked
    # a milestone naming an implemented algorithm but drawn as context only is reported
    stale = [dict(r, lib_symbol="", notebook="") if r["paper"] == "schulman2017proximal" else r for r in history]
    assert any("implements PPO" in p for p in check_history(stale, algorithms))
    half = [dict(r, notebook="") if r["paper"] == "williams1992simple" else r for r in history]
    assert any("needs both" in p for p in check_history(half, algorithms))
