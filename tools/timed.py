"""Run one phase of ``make test`` and record its wall time.

``python tools/timed.py "lib tests" -- CMD ARGS...`` runs CMD (``NAME=value`` words before it
set environment variables, as in a shell), appends ``lib tests: 42 s`` to
``_build/phase-times.txt`` and exits with CMD's exit status. ``python tools/timed.py --show``
prints the recorded phases and their total.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

LOG = pathlib.Path(__file__).resolve().parent.parent / "_build" / "phase-times.txt"


def main(argv: list[str]) -> int:
    if argv[:1] == ["--show"]:
        lines = LOG.read_text().splitlines() if LOG.is_file() else []
        total = sum(int(ln.rsplit(":", 1)[1].split()[0]) for ln in lines)
        for ln in lines:
            print("  " + ln)
        print(f"  total: {total} s ({total / 60:.1f} min)")
        return 0
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    name, cmd = argv[0], argv[2:]
    env = dict(os.environ)
    while cmd and "=" in cmd[0] and not cmd[0].startswith("-"):
        key, value = cmd.pop(0).split("=", 1)
        env[key] = value
    t0 = time.perf_counter()
    rc = subprocess.call(cmd, env=env)
    secs = time.perf_counter() - t0
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("a") as f:
        f.write(f"{name}: {secs:.0f} s\n")
    print(f"[phase] {name}: {secs:.0f} s" + ("" if rc == 0 else f" (failed, exit {rc})"), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
