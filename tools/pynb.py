#!/usr/bin/env python3
"""Write a book notebook (.ipynb) from a percent-format script, adding the setup cell.

    python tools/pynb.py SOURCE.py chapters/NN-part/name.ipynb

The source is plain Python with cell markers:

    # %% [markdown]          a markdown cell; each line's leading "# " is removed
    # %%                     a code cell
    # %% keep_output         a code cell whose (rounded) text output nbval compares
    # %% tags=["hide-input"] a code cell with tags (any of keep_output / tags=[...] may combine)
    # notebook: {"book": {"budget_s": 120, "budget_reason": "..."}}   (first line, optional)

The book's setup cell (lib.book.SETUP_CELL) is inserted first. Edit the .ipynb afterwards in
JupyterLab as usual; this tool is only a convenient way to write a new notebook as text.
"""
import json
import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from lib.book import new_notebook  # noqa: E402

MARK = re.compile(r"^# %%(.*)$")


def parse(text: str):
    lines = text.splitlines()
    meta = {}
    if lines and lines[0].startswith("# notebook:"):
        meta = json.loads(lines[0][len("# notebook:"):])
        lines = lines[1:]
    cells, kind, opts, buf = [], None, "", []

    def flush():
        if kind is None:
            if any(line.strip() for line in buf):
                raise ValueError("text before the first '# %%' marker")
            return
        if kind == "md":
            src = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in buf)
            cells.append(("md", src.strip("\n")))
        else:
            cmeta = {}
            if "keep_output" in opts:
                cmeta["keep_output"] = True
            m = re.search(r"tags=(\[.*?\])", opts)
            if m:
                cmeta["tags"] = json.loads(m.group(1))
            cells.append(("code", "\n".join(buf).strip("\n"), cmeta))

    for line in lines:
        m = MARK.match(line)
        if m:
            flush()
            opts = m.group(1).strip()
            kind = "md" if opts.startswith("[markdown]") else "code"
            buf = []
        else:
            buf.append(line)
    flush()
    return cells, meta


def main(argv):
    if len(argv) != 3:
        print(__doc__)
        return 2
    src, dst = pathlib.Path(argv[1]), pathlib.Path(argv[2])
    cells, meta = parse(src.read_text(encoding="utf-8"))
    nb = new_notebook(cells, meta)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {dst} ({len(nb['cells'])} cells)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
