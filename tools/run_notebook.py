#!/usr/bin/env python3
"""Execute notebooks in place of a reader and report the time of each (nothing is saved).

    python tools/run_notebook.py chapters/06-rl-basics/returns.ipynb [more.ipynb ...]

Exit status 1 if a notebook fails or runs over its budget (lib.book.notebook_budget).
"""
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from lib.book import notebook_budget  # noqa: E402


def run(path: pathlib.Path) -> bool:
    nb = nbformat.read(path, as_version=4)
    budget, _ = notebook_budget(nb)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    try:
        client.execute()
        ok = True
    except CellExecutionError as exc:
        print(str(exc)[-3000:])
        ok = False
    secs = time.perf_counter() - t0
    status = "ok" if ok else "FAILED"
    if ok and secs > budget:
        status, ok = "OVER BUDGET", False
    print(f"{secs:7.1f} s / {budget:4.0f} s  {status}  {path}")
    return ok


if __name__ == "__main__":
    paths = [pathlib.Path(p) for p in sys.argv[1:]]
    if not paths:
        print(__doc__)
        sys.exit(2)
    results = [run(p) for p in paths]
    sys.exit(0 if all(results) else 1)
