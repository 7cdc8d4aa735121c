"""Run the book's notebooks as several equally valid draws and tabulate the self-checks.

A seeded run is reproducible only on the machine that produced it: another CPU's float kernels
or another thread count send training down another trajectory. ``make robust`` stands in for
"another machine" by re-running every notebook under nbval in five variants:

* seed shifts 1, 2, 3 and 4 (``BOOK_SEED_SHIFT=k``, which ``lib.seed_everything`` adds to every
  notebook's seed) on one torch/OpenMP thread, and
* seed shift 0 on two threads.

It prints a table notebook x variant -> ``pass`` or the failing cell and its assertion, and
exits 1 if any variant of any notebook fails. Time budgets are not judged here (``make test``
does that); only the self-checks are.

Usage::

    python tools/robust.py                      # every notebook under chapters/
    python tools/robust.py chapters/06-rl-basics/deep-dqn.ipynb [more.ipynb ...]
    python tools/robust.py --variants 1:1,0:2   # shift:threads pairs
"""
from __future__ import annotations

import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_VARIANTS = ((1, 1), (2, 1), (3, 1), (4, 1), (0, 2))


def parse_variants(text: str) -> list[tuple[int, int]]:
    """``"1:1,0:2"`` -> ``[(1, 1), (0, 2)]`` (seed shift, threads)."""
    out = []
    for part in text.split(","):
        try:
            shift, threads = (int(x) for x in part.split(":"))
        except ValueError:
            raise SystemExit(f"--variants: expected shift:threads pairs like 1:1,0:2, got {part!r}")
        if shift < 0 or threads < 1:
            raise SystemExit(f"--variants: shift must be >= 0 and threads >= 1, got {part!r}")
        out.append((shift, threads))
    return out


ANSI = re.compile(r"(\x1b|#x1B)\[[0-9;]*m")


def failure_summary(text: str) -> str:
    """The most telling part of an nbval failure: the exception line and, for an assertion,
    the statement that failed (``----> n assert ...``)."""
    lines = [ANSI.sub("", ln).strip() for ln in (text or "").splitlines()]
    lines = [ln for ln in lines if ln]
    exc = next((ln for ln in reversed(lines) if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", ln)),
               None)
    if exc is None:
        return (lines[0] if lines else "failed")[:200]
    arrows = [ln for ln in lines if ln.startswith("---->")]
    where = re.sub(r"^---->\s*\d+\s*", "", arrows[-1]) if arrows else ""
    if exc.startswith("AssertionError") and where:
        return f"{exc[:120]} [at: {where[:100]}]"
    return exc[:200]


def read_junit(path: pathlib.Path) -> dict[str, str]:
    """notebook path -> "pass" or "cell N: <failure>" (first failing cell)."""
    results: dict[str, str] = {}
    if not path.is_file():
        return results
    for case in ET.parse(path).getroot().iter("testcase"):
        nb = (case.get("classname") or "").replace(".", "/")
        file = case.get("file") or ""
        name = case.get("name") or ""
        key = file if file.endswith(".ipynb") else nb
        if not key.endswith(".ipynb"):
            key = key.rsplit("/", 1)[0] + ".ipynb" if "ipynb" in key else key
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is not None and results.get(key, "pass") == "pass":
            cell = re.search(r"Cell (\d+)", name)
            where = f"cell {cell.group(1)}: " if cell else ""
            results[key] = where + failure_summary((bad.get("message") or "") + "\n" + (bad.text or ""))
        else:
            results.setdefault(key, "pass")
    return results


def run_variant(notebooks: list[str], shift: int, threads: int, jobs: int) -> tuple[dict[str, str], float]:
    env = dict(os.environ, BOOK_SEED_SHIFT=str(shift), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), BOOK_NO_BUDGET="1")
    with tempfile.TemporaryDirectory() as tmp:
        xml = pathlib.Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", *notebooks, "--nbval-lax", "--nbval-current-env",
               "--nbval-cell-timeout=900", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
               "-o", "junit_family=xunit1"]
        if jobs > 1 and len(notebooks) > 1:
            cmd += ["-n", str(min(jobs, len(notebooks))), "--dist", "loadfile"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        secs = time.perf_counter() - t0
        results = read_junit(xml)
    for nb in notebooks:
        if nb not in results:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            results[nb] = "did not run: " + " | ".join(tail)[:160]
    return results, secs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", help="notebooks (default: every one under chapters/)")
    ap.add_argument("--variants", default=",".join(f"{s}:{t}" for s, t in DEFAULT_VARIANTS),
                    help="comma-separated shift:threads pairs (default: %(default)s)")
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("JOBS", "2")),
                    help="notebooks run in parallel (default: $JOBS or 2)")
    args = ap.parse_args(argv)
    if args.notebooks:
        notebooks = []
        for nb in args.notebooks:
            p = (ROOT / nb).resolve() if not pathlib.Path(nb).is_absolute() else pathlib.Path(nb)
            if not p.is_file() or p.suffix != ".ipynb":
                raise SystemExit(f"not a notebook: {nb}")
            notebooks.append(p.relative_to(ROOT).as_posix())
    else:
        sys.path.insert(0, str(ROOT))
        from lib.book import find_notebooks

        notebooks = [p.relative_to(ROOT).as_posix() for p in find_notebooks(ROOT)]
    variants = parse_variants(args.variants)
    table: dict[str, dict[str, str]] = {nb: {} for nb in notebooks}
    names = []
    t_all = time.perf_counter()
    for shift, threads in variants:
        name = f"shift {shift}, {threads} thr"
        names.append(name)
        print(f"[robust] {name}: {len(notebooks)} notebook(s) ...", flush=True)
        results, secs = run_variant(notebooks, shift, threads, args.jobs)
        n_bad = sum(v != "pass" for v in results.values())
        print(f"[robust] {name}: {len(notebooks) - n_bad} passed, {n_bad} failed in {secs:.0f} s",
              flush=True)
        for nb in notebooks:
            table[nb][name] = results[nb]
    failed = 0
    print("\nnotebook x variant (pass, or the first failing cell and its assertion)")
    print("| notebook | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for nb in notebooks:
        row = [table[nb][n] for n in names]
        failed += sum(r != "pass" for r in row)
        print(f"| {nb} | " + " | ".join(row) + " |")
    total = len(notebooks) * len(names)
    print(f"\nrobust: {total - failed} of {total} notebook runs passed "
          f"({len(notebooks)} notebooks x {len(names)} variants) in "
          f"{time.perf_counter() - t_all:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
