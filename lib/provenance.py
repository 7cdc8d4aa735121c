"""Where a result came from: the commit, the machine and the load it ran under.

Every shipped artefact (``data/checkpoints/*/meta.json``) and every benchmark record
(``bench/results/*.json``) records these, so a reader can tell which code and which machine
produced a number.

Book: infrastructure (the checkpoint sidecars and the benchmark appendix).
"""
from __future__ import annotations

import os
import pathlib
import platform
import subprocess

from . import ROOT

__all__ = ["git", "git_commit", "tree_dirty", "cpu_model", "loadavg", "machine"]


def git(*args: str, cwd: pathlib.Path | str = ROOT) -> str:
    """Output of ``git <args>`` in the book's checkout, or ``"unknown"`` outside one."""
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def git_commit() -> str:
    """The checked-out commit (``git rev-parse HEAD``), or ``"unknown"``."""
    return git("rev-parse", "HEAD")


def tree_dirty() -> bool:
    """Whether tracked files differ from the commit (the result may not be the commit's)."""
    out = git("status", "--porcelain", "--untracked-files=no")
    return bool(out) and out != "unknown"


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what ``platform`` reports."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def loadavg() -> list[float]:
    """The 1, 5 and 15-minute load averages (empty where the OS does not report them)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return []


def machine() -> dict:
    """CPU model, core count, load average, platform, and the python/torch versions and threads."""
    info = {"cpu": cpu_model(), "nproc": os.cpu_count(), "loadavg": loadavg(),
            "platform": platform.platform(), "python": platform.python_version()}
    try:
        import torch

        info.update(torch=torch.__version__, threads=torch.get_num_threads())
    except ImportError:  # pragma: no cover - torch is a book requirement
        pass
    return info
