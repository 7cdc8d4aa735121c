#!/usr/bin/env python3
"""Run notebooks' code cells as a plain Python script, without Jupyter (for machines that have
torch but no kernel, e.g. a GPU box): each notebook runs in a fresh subprocess, in its own folder,
with the Agg backend; ``IPython.display`` is stubbed if IPython is missing. Reports time, device
and pass/fail for each.

    python tools/run_plain.py chapters/**/*.ipynb
"""
import json
import os
import pathlib
import subprocess
import sys
import time

STUB = r'''
import sys, types
try:
    import IPython.display  # noqa: F401
except ImportError:
    ipy = types.ModuleType("IPython"); disp = types.ModuleType("IPython.display")
    class _Rich:
        def __init__(self, data=None, **kw): self.data = data
        def __repr__(self): return str(self.data)[:200]
    disp.HTML = disp.Markdown = disp.Image = disp.SVG = _Rich
    disp.display = lambda *a, **k: [print(repr(x)[:200]) for x in a]
    ipy.display = disp; ipy.get_ipython = lambda: None; ipy.version_info = (9, 0, 0)
    sys.modules["IPython"] = ipy; sys.modules["IPython.display"] = disp
import matplotlib; matplotlib.use("Agg")
import matplotlib.pyplot as plt; plt.show = lambda *a, **k: plt.close("all")
'''


def script_of(path: pathlib.Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    parts = [STUB]
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        lines = [line for line in src.splitlines() if not line.lstrip().startswith(("%", "!"))]
        parts.append("\n".join(lines))
    parts.append("import lib; print('DEVICE', lib.device())")
    return "\n\n".join(parts)


def main(paths):
    ok_all = True
    for p in paths:
        path = pathlib.Path(p).resolve()
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", script_of(path)], cwd=path.parent, capture_output=True,
                              text=True, env={**os.environ, "MPLBACKEND": "Agg"})
        secs = time.perf_counter() - t0
        dev = next((line.split()[1] for line in proc.stdout.splitlines() if line.startswith("DEVICE ")), "?")
        status = "ok" if proc.returncode == 0 else "FAILED"
        ok_all &= proc.returncode == 0
        print(f"{secs:7.1f} s  {dev:5s} {status}  {p}", flush=True)
        if proc.returncode:
            print("    " + "\n    ".join(proc.stderr.strip().splitlines()[-15:]), flush=True)
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
