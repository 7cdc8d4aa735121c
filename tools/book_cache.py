"""One execution per test run: hand nbval's executions to the HTML build.

``make test`` runs nbval with ``BOOK_EXECUTED_DIR`` set; the root ``conftest.py`` writes every
notebook that passed, with the outputs nbval captured, under that folder. Then:

``python tools/book_cache.py prime DIR``
    puts each executed notebook into the build's jupyter-cache (``_build/.jupyter_cache``,
    the cache Jupyter Book's ``execute_notebooks: cache`` reads), keyed as myst-nb keys it: by
    the hash of the notebook's code cells. The build then renders those outputs instead of
    executing the notebook again. A notebook whose code changed since has another hash and is
    simply executed by the build, as without this step.

``python tools/book_cache.py verify``
    after the build: every notebook of the book was rendered from an execution primed in this
    run (exit 1 and the list otherwise), i.e. ``make test`` executed each notebook once.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CACHE = ROOT / "_build" / ".jupyter_cache"
PRIMED = "primed.json"


def _cache(path: pathlib.Path):
    from jupyter_cache import get_cache

    return get_cache(str(path))


def prime(executed: pathlib.Path, cache_path: pathlib.Path = CACHE) -> dict[str, int]:
    """Cache every executed notebook under ``executed``; returns {source path: cache pk}."""
    import nbformat
    from jupyter_cache.base import CacheBundleIn

    if not executed.is_dir():
        raise SystemExit(f"no executed notebooks in {executed} (run nbval with BOOK_EXECUTED_DIR)")
    cache = _cache(cache_path)
    primed: dict[str, int] = {}
    for nb_path in sorted(executed.rglob("*.ipynb")):
        meta_path = nb_path.with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        source = ROOT / meta.get("source", nb_path.relative_to(executed).as_posix())
        if not source.is_file():
            continue
        nb = nbformat.read(str(nb_path), as_version=4)
        record = cache.cache_notebook_bundle(
            CacheBundleIn(nb, str(source), data={"execution_seconds": meta.get("execution_seconds")}),
            check_validity=False, overwrite=True)
        primed[source.relative_to(ROOT).as_posix()] = record.pk
    (executed / PRIMED).write_text(json.dumps(primed, indent=1))
    return primed


def verify(executed: pathlib.Path, cache_path: pathlib.Path = CACHE) -> list[str]:
    """Notebooks of the book that the build did not render from this run's primed executions."""
    import nbformat

    sys.path.insert(0, str(ROOT))
    from lib.book import find_notebooks

    primed = json.loads((executed / PRIMED).read_text()) if (executed / PRIMED).is_file() else {}
    cache = _cache(cache_path)
    problems = []
    for path in find_notebooks(ROOT):
        rel = path.relative_to(ROOT).as_posix()
        try:
            record = cache.match_cache_notebook(nbformat.read(str(path), as_version=4))
        except KeyError:
            problems.append(f"{rel}: no cached execution")
            continue
        if rel not in primed:
            problems.append(f"{rel}: nbval did not hand over an execution (did it fail?)")
        elif record.pk != primed[rel]:
            problems.append(f"{rel}: the build executed it again (cache record {record.pk}, "
                            f"nbval's was {primed[rel]})")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=("prime", "verify"))
    ap.add_argument("executed", nargs="?", default=str(ROOT / "_build" / ".executed"),
                    help="folder of nbval's executed notebooks (default: _build/.executed)")
    args = ap.parse_args(argv)
    executed = pathlib.Path(args.executed)
    if args.command == "prime":
        primed = prime(executed)
        print(f"book_cache: {len(primed)} executed notebook(s) handed to the build's cache")
        return 0
    problems = verify(executed)
    if problems:
        print("book_cache: the HTML was not built from the test run's executions:")
        print("\n".join("  " + p for p in problems))
        return 1
    print("book_cache: every notebook was executed once (by nbval) and rendered from that run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
