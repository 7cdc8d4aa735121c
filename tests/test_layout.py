"""The layout of lib: tests mirror the source tree, and the layers do not reach across.

* every lib module has a test file named after it: ``tests/test_<module>.py`` or
  ``tests/test_<package>_<module>.py`` (for a module of a nested package such as ``lib/llm/vlm/``,
  the package's ``tests/test_vlm.py``), except the few listed in ``ALIASES`` with their reason;
* ``lib.rl`` never imports the book's structure (``lib.book``, ``lib.bookmap``, ``lib.registry``).
"""
import ast
import pathlib

import lib
from lib.book import MODULE_TEST_ALIASES, module_test_candidates

ROOT = lib.ROOT
TESTS = {p.name for p in (ROOT / "tests").glob("test_*.py")}

ALIASES = MODULE_TEST_ALIASES
candidates = module_test_candidates


def lib_modules():
    for path in sorted((ROOT / "lib").rglob("*.py")):
        if path.name not in ("__init__.py", "__main__.py"):
            yield path.relative_to(ROOT).as_posix()


def test_every_module_has_its_test_file():
    missing = []
    for rel in lib_modules():
        if rel in ALIASES:
            assert ALIASES[rel] in TESTS, f"{rel}: alias {ALIASES[rel]} does not exist"
            continue
        if not candidates(rel) & TESTS:
            missing.append(f"{rel}: expected one of {sorted(candidates(rel))}")
    assert missing == [], "\n".join(missing)


def test_rl_does_not_import_the_books_structure():
    offenders = []
    for path in sorted((ROOT / "lib" / "rl").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level:          # relative: resolve against lib.rl
                    base = ["lib", "rl"][: max(0, 2 - (node.level - 1))]
                    mod = ".".join(base + ([mod] if mod else []))
                names = [mod] + [f"{mod}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for n in names:
                if n in ("lib.book", "lib.bookmap", "lib.registry"):
                    offenders.append(f"{path.relative_to(ROOT)} imports {n}")
    assert offenders == []
