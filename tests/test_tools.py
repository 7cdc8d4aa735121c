"""The maintenance tools: notebook writer and bibliography generator."""
import json
import subprocess
import sys

import lib
from lib import book

ROOT = lib.ROOT


def test_pynb_writes_setup_cell_and_markers(tmp_path):
    src = tmp_path / "n.py"
    src.write_text('# notebook: {"book": {"budget_s": 100, "budget_reason": "r"}}\n'
                   "# %% [markdown]\n# # Title\n#\n# text\n# %%\nx = 1\n# %% keep_output\nprint(x)\n"
                   '# %% tags=["hide-input"]\ny = 2\n')
    dst = tmp_path / "n.ipynb"
    subprocess.run([sys.executable, str(ROOT / "tools" / "pynb.py"), str(src), str(dst)], check=True,
                   capture_output=True)
    nb = json.loads(dst.read_text())
    cells = nb["cells"]
    assert book.cell_source(cells[0]) == book.SETUP_CELL and cells[0]["metadata"]["tags"] == ["remove-cell"]
    assert cells[1]["cell_type"] == "markdown" and cells[1]["source"] == "# Title\n\ntext"
    assert cells[3]["metadata"] == {"keep_output": True}
    assert cells[4]["metadata"] == {"tags": ["hide-input"]}
    assert nb["metadata"]["book"]["budget_s"] == 100


def test_references_bib_is_up_to_date():
    sys.path.insert(0, str(ROOT / "tools"))
    import make_bib

    expected = make_bib.render((ROOT / "data" / "seed-references.md").read_text(encoding="utf-8"))
    assert (ROOT / "references.bib").read_text(encoding="utf-8") == expected, "run `make bib`"
    assert expected.count("@misc{") >= 180
