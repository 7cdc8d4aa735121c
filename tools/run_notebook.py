#!/usr/bin/env python3
"""Execute notebooks in place of a reader and report the time of each (nothing is saved).

    python tools/run_notebook.py chapters/06-rl-basics/returns.ipynb [more.ipynb ...]

Each notebook runs on one torch/OpenMP thread, as ``make test`` runs it (unless
``OMP_NUM_THREADS`` is set). Besides the wall time it prints the kernel's CPU time (user + system),
which a busy machine inflates much less than the wall time: on a shared machine, judge a
notebook's cost by its CPU time.

Exit status 1 if a notebook fails or runs over its budget (lib.book.notebook_budget).
"""
import os
import pathlib
import resource
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
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        client.execute()
        ok = True
    except CellExecutionError as exc:
        print(str(exc)[-3000:])
        ok = False
    secs = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)    # the kernel, once shut down
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    status = "ok" if ok else "FAILED"
    if ok and secs > budget:
        status, ok = "OVER BUDGET", False
    print(f"{secs:7.1f} s / {budget:4.0f} s  (cpu {cpu:6.1f} s)  {status}  {path}")
    return ok


if __name__ == "__main__":
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    paths = [pathlib.Path(p) for p in sys.argv[1:]]
    if not paths:
        print(__doc__)
        sys.exit(2)
    results = [run(p) for p in paths]
    sys.exit(0 if all(results) else 1)
