"""tools/scan_pages.py: the scan of the built book fails on each thing a reader should never see
(one small fixture page per kind, in tests/fixtures/pages) and passes on a clean page."""
import pathlib
import struct
import sys
import zlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import scan_pages  # noqa: E402

PAGES = ROOT / "tests" / "fixtures" / "pages"


def _scan(name):
    path = PAGES / name
    return scan_pages.scan_html(path.read_text(encoding="utf-8"), name, path.parent)


def test_clean_page_passes():
    assert _scan("clean.html") == []


@pytest.mark.parametrize("name, expected", [
    ("traceback.html", "a traceback ('ZeroDivisionError: division by zero')"),
    ("tqdm.html", "progress-bar residue"),
    ("stray-glue.html", "ends in glue(...) and prints the value '0.0412'"),
    ("printed-report.html", "an exercise report printed as text ([NOT YET])"),
    ("network.html", "script loaded from the network: https://cdn.jsdelivr.net"),
    ("raw-tex.html", "raw TeX in the text (math that did not render)"),
])
def test_each_defect_is_found(name, expected):
    findings = _scan(name)
    assert any(expected in f for f in findings), findings


def test_network_stylesheet_and_stderr_are_found():
    assert any("stylesheet/preload from the network: //fonts" in f for f in _scan("network.html"))
    assert any("error output on stderr" in f for f in _scan("tqdm.html"))


def _png(path, width, height=10):
    raw = b"".join(b"\x00" + b"\xff" * (3 * width) for _ in range(height))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_over_wide_figures_are_found(tmp_path):
    _png(tmp_path / "wide.png", scan_pages.MAX_FIGURE_PX + 1)
    _png(tmp_path / "ok.png", 900)
    assert scan_pages.png_width(tmp_path / "ok.png") == 900
    html = ('<div class="cell"><div class="cell_output"><img src="{}"/></div></div>')
    assert scan_pages.scan_html(html.format("ok.png"), "p", tmp_path) == []
    found = scan_pages.scan_html(html.format("wide.png"), "p", tmp_path)
    assert found and f"figure {scan_pages.MAX_FIGURE_PX + 1} px wide" in found[0]


def test_scan_site_and_cli(tmp_path, capsys):
    (tmp_path / "index.html").write_text((PAGES / "clean.html").read_text())
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.html").write_text((PAGES / "traceback.html").read_text())
    findings, n = scan_pages.scan_site(tmp_path)
    assert n == 2 and len(findings) == 1 and findings[0].startswith("sub/bad.html")
    assert scan_pages.main([str(tmp_path)]) == 1
    (tmp_path / "sub" / "bad.html").unlink()
    assert scan_pages.main([str(tmp_path)]) == 0
    assert "pages clean" in capsys.readouterr().out
    assert scan_pages.main([str(tmp_path / "nothing")]) == 2
