"""Show the ``lib`` code behind a section: the core lines of a function or class, with the file
they live in and the test that checks them, as a collapsible block on the page.

Book: every algorithm section (the "visible code" rule of the book guide).

A notebook cell ending in ``show_code(train_ppo, test="tests/test_ppo.py")`` renders, in the
built HTML and in JupyterLab, a folded block titled with the object's path and line numbers;
the reader unfolds it to read the algorithm itself. ``start``/``stop`` narrow the block to the
core lines (the first line containing ``start`` through the first later line containing
``stop``), so a long function can be shown from its loop onwards.
"""
from __future__ import annotations

import html
import inspect
import pathlib
import textwrap

from . import ROOT

__all__ = ["CodeBlock", "show_code"]


class CodeBlock:
    """Source lines of one ``lib`` object, rendered as HTML (folded), Markdown or plain text."""

    def __init__(self, path: str, first_line: int, source: str, qualname: str, test: str | None,
                 open: bool = False):
        self.path = path
        self.first_line = first_line
        self.source = source
        self.qualname = qualname
        self.test = test
        self.open = open

    @property
    def last_line(self) -> int:
        return self.first_line + self.source.count("\n")

    @property
    def title(self) -> str:
        where = f"{self.path}, lines {self.first_line}–{self.last_line}"
        tested = f" · tested in {self.test}" if self.test else ""
        return f"Code: {self.qualname} ({where}){tested}"

    def _repr_html_(self) -> str:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        body = highlight(self.source, PythonLexer(),
                         HtmlFormatter(noclasses=True, linenos="inline",
                                       linenostart=self.first_line, nobackground=True))
        opened = " open" if self.open else ""
        return (f'<details class="book-code"{opened}><summary>{html.escape(self.title)}</summary>'
                f'<div class="book-code-body" style="overflow-x:auto;font-size:0.85em">{body}'
                f"</div></details>")

    def _repr_markdown_(self) -> str:
        return f"**{self.title}**\n\n```python\n{self.source}\n```\n"

    def __repr__(self) -> str:
        return f"{self.title}\n{self.source}"


def _lib_file(obj) -> pathlib.Path:
    try:
        path = pathlib.Path(inspect.getsourcefile(obj) or "").resolve()
    except TypeError:
        raise TypeError(f"show_code expects a function, class or method defined in lib, "
                        f"got {type(obj).__name__}") from None
    lib_dir = (ROOT / "lib").resolve()
    if lib_dir not in path.parents:
        raise ValueError(f"show_code shows the book's own code (under lib/); "
                         f"{getattr(obj, '__qualname__', obj)!r} lives in {path}")
    return path


def show_code(obj, *, test: str | None = None, start: str | None = None, stop: str | None = None,
              open: bool = False) -> CodeBlock:
    """The source of ``obj`` (a ``lib`` function, class or method) as a :class:`CodeBlock`.

    ``test`` is the path (from the book's root) of the test file that checks ``obj``; it must
    exist. ``start`` and ``stop`` are substrings: the block runs from the first line containing
    ``start`` to the first later line containing ``stop`` (both included); either may be left
    out. Raises ``ValueError`` when a marker is not found or the test file does not exist.
    Decorated functions (e.g. ``@torch.no_grad()``) are shown from their own source.
    """
    obj = inspect.unwrap(obj)
    path = _lib_file(obj)
    lines, first = inspect.getsourcelines(obj)
    lo, hi = 0, len(lines)
    if start is not None:
        hits = [i for i, ln in enumerate(lines) if start in ln]
        if not hits:
            raise ValueError(f"start marker {start!r} is not in the source of {obj.__qualname__}")
        lo = hits[0]
    if stop is not None:
        hits = [i for i, ln in enumerate(lines) if stop in ln and i >= lo]
        if not hits:
            raise ValueError(f"stop marker {stop!r} is not in the source of {obj.__qualname__} "
                             f"after the start")
        hi = hits[0] + 1
    if test is not None:
        if not isinstance(test, str) or not (ROOT / test).is_file():
            raise ValueError(f"test must be the path of an existing test file, e.g. "
                             f"'tests/test_ppo.py'; got {test!r}")
    # dedent so that a block starting inside a loop reads from column 0
    source = textwrap.dedent("".join(lines[lo:hi])).rstrip("\n")
    rel = path.relative_to(ROOT.resolve()).as_posix()
    qualname = f"{obj.__module__}.{obj.__qualname__}"
    return CodeBlock(rel, first + lo, source, qualname, test, open=open)
