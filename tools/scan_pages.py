"""Scan the built book (``_build/html``) for what a reader should never see.

``python tools/scan_pages.py _build/html`` exits 1 and lists every finding; ``make test`` runs
it after the build. A page fails on:

* **error output**: a traceback, or anything written to stderr (warnings included);
* **progress-bar residue**: tqdm text (``45%|████ | 9/20 [00:01<00:01, 8.2it/s]``) - bars
  belong in Jupyter, the book's executions run with ``TQDM_DISABLE=1``;
* **a stray value**: a cell whose last statement is a ``glue(...)`` call and that shows an
  execution result (the glued value printed a second time);
* **an exercise report printed as text** (``[NOT YET] …``): a checker's report shows itself
  once, as Markdown;
* **a script or stylesheet from the network**: every ``<script src>`` and stylesheet/preload
  ``<link href>`` must be local, so the book (math included) works offline;
* **raw TeX in the prose**: a ``$`` or a ``\\command`` left in the text outside math, code
  and outputs (math that did not parse, e.g. ``$$…$$`` glued into a paragraph);
* **a figure too wide for the page**: a PNG wider than :data:`MAX_FIGURE_PX` is shrunk to the
  ~750 px content column and its text becomes unreadable.
"""
from __future__ import annotations

import argparse
import ast
import pathlib
import re
import struct
import sys

#: Widest figure (pixels) the page shows without shrinking its text below legibility.
MAX_FIGURE_PX = 1100
TQDM_RE = re.compile(r"\d+%\|[^|\n]*\|\s*\d+/\d+|\d+/\d+ \[\d+:\d+<|\bit/s\]|\bs/it\]")
REPORT_RE = re.compile(r"^\[(PASSED|NOT YET|NOT ATTEMPTED YET)\] ", re.M)
TRACEBACK_RE = re.compile(r"Traceback \(most recent call last\)")
EXTERNAL_RE = re.compile(r"^(https?:)?//", re.I)
GLUE_NAMES = {"glue"}
RAW_TEX_RE = re.compile(r"\$\$|\\(frac|sum|prod|int|theta|mathbb|mathrm|nabla|pi|mid|log|alpha|"
                        r"beta|gamma|sigma|mu|big|Big|left|right|hat|tilde|cdot|le|ge|E)"
                        r"(?![A-Za-z])")


def _classes(tag) -> set[str]:
    return set(tag.get("class") or [])


def _last_statement_is_glue(code: str) -> bool:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        return False
    call = tree.body[-1].value
    if not isinstance(call, ast.Call):
        return False
    f = call.func
    name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
    return name in GLUE_NAMES


def png_width(path: pathlib.Path) -> int | None:
    """Width in pixels from a PNG header (None if the file is not a PNG)."""
    try:
        head = path.read_bytes()[:24]
    except OSError:
        return None
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">I", head[16:20])[0]


def scan_html(text: str, page: str = "page", base: pathlib.Path | None = None) -> list[str]:
    """Findings on one HTML page; ``base`` is the page's folder (for figure files)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    out: list[str] = []
    for tag in soup.find_all("script", src=True):
        if EXTERNAL_RE.match(tag["src"]):
            out.append(f"{page}: script loaded from the network: {tag['src']}")
    for tag in soup.find_all("link", href=True):
        rel = {r.lower() for r in (tag.get("rel") or [])}
        if rel & {"stylesheet", "preload", "modulepreload"} and EXTERNAL_RE.match(tag["href"]):
            out.append(f"{page}: stylesheet/preload from the network: {tag['href']}")
    article = soup.select_one("article") or soup
    for block in article.find_all(["p", "li", "dd", "td", "h1", "h2", "h3", "h4"]):
        if block.find_parent(["pre", "code"]) or block.find_parent(class_="cell_output"):
            continue
        text = "".join(t for t in block.find_all(string=True)
                       if not t.find_parent(class_="math") and not t.find_parent(["code", "pre"]))
        m = RAW_TEX_RE.search(text)
        if m:
            out.append(f"{page}: raw TeX in the text (math that did not render): "
                       f"{text[max(0, m.start() - 20):m.end() + 20].strip()!r}")
            break
    for n, cell in enumerate(soup.select("div.cell"), 1):
        where = f"{page}: code cell {n}"
        outputs = cell.select("div.cell_output")
        if not outputs:
            continue
        output = outputs[0]
        for div in output.select("div.output"):
            kinds = _classes(div)
            body = div.get_text()
            if "traceback" in kinds or TRACEBACK_RE.search(body):
                out.append(f"{where}: a traceback ({body.strip().splitlines()[-1][:100]!r})")
            elif "stderr" in kinds:
                out.append(f"{where}: error output on stderr ({body.strip()[:100]!r})")
            if TQDM_RE.search(body):
                out.append(f"{where}: progress-bar residue ({body.strip()[:80]!r})")
            if REPORT_RE.search(body):
                out.append(f"{where}: an exercise report printed as text "
                           f"({REPORT_RE.search(body).group(0).strip()}); it shows itself once")
        code_pre = cell.select_one("div.cell_input pre")
        if code_pre is not None and output.select("div.output.text_plain"):
            if _last_statement_is_glue(code_pre.get_text()):
                value = output.select("div.output.text_plain")[-1].get_text().strip()
                out.append(f"{where}: ends in glue(...) and prints the value {value[:60]!r}")
        if base is not None:
            for img in output.find_all("img", src=True):
                if EXTERNAL_RE.match(img["src"]):
                    out.append(f"{where}: image loaded from the network: {img['src']}")
                    continue
                width = png_width(base / img["src"])
                if width is not None and width > MAX_FIGURE_PX:
                    out.append(f"{where}: figure {width} px wide (at most {MAX_FIGURE_PX}: the "
                               "page shrinks it and its text becomes unreadable)")
    return out


def scan_site(html_dir: pathlib.Path) -> tuple[list[str], int]:
    """Findings over every page of a built book; returns (findings, number of pages)."""
    pages = sorted(p for p in html_dir.rglob("*.html") if "_static" not in p.parts)
    findings: list[str] = []
    for path in pages:
        rel = path.relative_to(html_dir).as_posix()
        findings += scan_html(path.read_text(encoding="utf-8", errors="replace"), rel, path.parent)
    return findings, len(pages)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html_dir", nargs="?", default="_build/html")
    args = ap.parse_args(argv)
    html_dir = pathlib.Path(args.html_dir)
    if not (html_dir / "index.html").is_file():
        print(f"scan_pages: no built book in {html_dir} (run make book)")
        return 2
    findings, n = scan_site(html_dir)
    if findings:
        print(f"scan_pages: {len(findings)} finding(s) on {n} pages:")
        print("\n".join("  " + f for f in findings))
        return 1
    print(f"scan_pages: {n} pages clean (no error output, progress residue, stray values, "
          "printed reports, network scripts or over-wide figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
