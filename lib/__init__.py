"""The book's single tested source of code.

Notebooks import this package; they explain and drive it, they do not re-implement it.
Sub-packages: ``lib.rl`` (reinforcement learning), ``lib.llm`` (the tiny language model),
``lib.viz`` (style and plot helpers), ``lib.exercises`` (auto-checkers), ``lib.book``
(the seed-map contract and book structure).

Book: infrastructure (seeding, device, glue, progress bars for every notebook).
"""
from __future__ import annotations

import os
import pathlib
import random

__version__ = "0.1.0"

#: Top of the checkout (the folder holding ``lib/`` and ``data/``).
ROOT = pathlib.Path(__file__).resolve().parent.parent
#: Small shipped data: the seed map, data tables, checkpoints.
DATA_DIR = ROOT / "data"

_MAX_SEED = 2**32 - 1

#: Environment variable that shifts every notebook's seed: ``BOOK_SEED_SHIFT=k`` turns
#: ``seed_everything(s)`` into ``seed_everything(s + k)``. A seeded run on another CPU is just
#: another draw; ``make robust`` uses the shift to re-run the book as several such draws.
SEED_SHIFT_ENV = "BOOK_SEED_SHIFT"


def seed_shift() -> int:
    """The seed shift set by ``BOOK_SEED_SHIFT`` (0 when unset).

    Raises ``ValueError`` when the variable is set to anything but a non-negative integer.
    """
    raw = os.environ.get(SEED_SHIFT_ENV, "").strip()
    if not raw:
        return 0
    try:
        shift = int(raw)
    except ValueError:
        raise ValueError(f"{SEED_SHIFT_ENV} must be a non-negative integer, got {raw!r}") from None
    if shift < 0:
        raise ValueError(f"{SEED_SHIFT_ENV} must be a non-negative integer, got {shift}")
    return shift


def seed_everything(seed: int) -> int:
    """Seed Python's ``random``, NumPy and (if installed) torch, CPU and CUDA.

    The seed actually used is ``seed + seed_shift()`` (``BOOK_SEED_SHIFT``, 0 by default), and
    it is returned, so that a notebook writes ``SEED = seed_everything(0)`` and derives every
    other random stream from ``SEED``: then one environment variable re-runs the notebook as
    another, equally valid draw. Raises ``TypeError`` for a non-integer and ``ValueError`` for
    a seed outside ``[0, 2**32 - 1]`` (NumPy's legacy seeding range).
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        # numpy integers are fine; floats (even 3.0) are rejected to avoid silent truncation
        try:
            import numpy as np

            if isinstance(seed, np.integer):
                seed = int(seed)
            else:
                raise TypeError
        except (ImportError, TypeError):
            raise TypeError(f"seed must be an int, got {type(seed).__name__} ({seed!r})") from None
    if not 0 <= seed <= _MAX_SEED:
        raise ValueError(f"seed must be in [0, {_MAX_SEED}], got {seed}")
    seed = seed + seed_shift()
    if seed > _MAX_SEED:
        raise ValueError(f"seed + {SEED_SHIFT_ENV} must be at most {_MAX_SEED}, got {seed}")
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy is always installed with the book
        pass
    try:
        import torch

        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    except ImportError:  # pragma: no cover
        pass
    return seed


def device(prefer: str | None = None):
    """The torch device the book computes on: CUDA when present, else CPU.

    ``prefer="cpu"`` forces the CPU; the environment variable ``BOOK_DEVICE`` (``cpu`` or
    ``cuda``) overrides the automatic choice for a whole run.
    """
    import torch

    choice = prefer or os.environ.get("BOOK_DEVICE")
    if choice is not None:
        if choice not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {choice!r}")
        if choice == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was requested but torch sees no CUDA device")
        return torch.device(choice)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def glue(name: str, value, display: bool = False) -> None:
    """Record ``value`` under ``name`` for the book's prose (myst-nb ``{glue}``).

    Works without myst-nb (e.g. on Colab): then it records nothing, so the notebook runs the
    same everywhere. Returns ``None``, so that a cell ending in ``glue(...)`` prints nothing.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"glue name must be an identifier-like string, got {name!r}")
    value = _plain(value)
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return None
    _glue(name, value, display=display)
    return None


def _plain(value):
    """NumPy / torch scalars -> Python numbers, so that ``{glue:text}`x:.3f``` can format them
    (myst-nb formats the *repr*, and ``np.float64(0.5)`` does not parse as a float)."""
    item = getattr(value, "item", None)
    shape = getattr(value, "shape", None)
    if callable(item) and shape is not None and tuple(shape) == ():
        return item()
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
    except ImportError:  # pragma: no cover
        pass
    return value


def progress(iterable=None, *, enabled: bool = True, **kwargs):
    """A ``tqdm.auto`` progress bar over ``iterable`` when ``enabled``, else the bare iterable
    wrapped in a disabled bar.

    Shown in Jupyter; ``TQDM_DISABLE=1`` (set by ``make test``/``make book``) hides it, so the
    built pages carry no bar residue. (Passing ``disable=False`` to tqdm directly would override
    that variable, and tqdm reads it only when imported: this helper reads it at each call.)
    """
    from tqdm.auto import tqdm

    hidden = os.environ.get("TQDM_DISABLE", "").strip().lower() in ("1", "true", "yes")
    if not enabled or hidden:
        kwargs["disable"] = True
    return tqdm(iterable, **kwargs)


def setup_notebook() -> None:
    """Common notebook setup: the book's plot style. Called by every notebook's setup cell."""
    import warnings

    from . import viz

    viz.use_style()
    # tqdm.auto falls back to text bars without ipywidgets (e.g. when the book is built); the
    # bars still show, only the "IProgress not found" warning is noise on every page.
    warnings.filterwarnings("ignore", message="IProgress not found")


__all__ = ["ROOT", "DATA_DIR", "seed_everything", "seed_shift", "SEED_SHIFT_ENV", "device", "glue", "setup_notebook", "progress",
           "__version__"]
