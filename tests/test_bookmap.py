"""lib.bookmap: the book map and the RL algorithm map, computed from data."""
import matplotlib

matplotlib.use("Agg")
import pytest  # noqa: E402

from lib import bookmap  # noqa: E402


def test_book_nodes_cover_every_seed_entry_once():
    bm = bookmap.load_book_map()
    nodes = bookmap.book_nodes(book_map=bm)
    assert len(nodes) == 128 and len({n.label for n in nodes}) == 128
    assert bookmap.check_book_map(nodes) == []
    assert all("、" not in n.title and "（" not in n.title for n in nodes)
    fig = bookmap.draw_book_map(nodes, bm)
    assert fig.axes


def test_check_book_map_flags_missing_notebook():
    nodes = [bookmap.Node("seed-1", "t", "01-panorama", "panorama", "chapters/01-panorama/nope", "")]
    assert "does not exist" in bookmap.check_book_map(nodes)[0]


def test_rl_table_validates_and_links_resolve():
    rows = bookmap.load_rl_algorithms()
    assert len(rows) >= 40
    assert bookmap.check_rl_algorithms(rows) == []
    fig, ax = bookmap.draw_rl_timeline(rows)
    assert ax.get_yticklabels()


def test_rl_table_rejects_bad_rows(tmp_path):
    path = tmp_path / "t.csv"
    header = ",".join(bookmap.RL_COLUMNS)
    path.write_text(header + "\nX,telepathy,on-policy,model-free,both,2000,a,b,c,k,,\n")
    with pytest.raises(ValueError, match="family"):
        bookmap.load_rl_algorithms(path)
    path.write_text(header + "\nX,value-based,on-policy,model-free,both,twenty,a,b,c,k,,\n")
    with pytest.raises(ValueError, match="year"):
        bookmap.load_rl_algorithms(path)
    path.write_text(header + "\nX,value-based,sometimes,model-free,both,2000,a,b,c,k,,\n")
    with pytest.raises(ValueError, match="policy"):
        bookmap.load_rl_algorithms(path)
    path.write_text(header + "\nX,value-based,on-policy,model-free,both,2000,a,b,c,k,lib.x,\n")
    with pytest.raises(ValueError, match="both lib_symbol and notebook"):
        bookmap.load_rl_algorithms(path)
    path.write_text("name,year\nX,2000\n")
    with pytest.raises(ValueError, match="columns"):
        bookmap.load_rl_algorithms(path)


def test_check_rl_algorithms_flags_unimportable_symbol():
    rows = [{"name": "X", "lib_symbol": "lib.rl.nothing_here.f", "notebook": "chapters/01-panorama/book-map"}]
    problems = bookmap.check_rl_algorithms(rows)
    assert problems and "does not resolve" in problems[0]


def test_coverage_by_stage_rejects_non_nodes():
    with pytest.raises(TypeError, match="Node"):
        bookmap.coverage_by_stage([{"stage": "x"}])


def test_book_map_text_is_legible_at_the_column_width():
    """Issue 11: at most the book's 10.5 in column, and no entry text under 8 pt (11 px
    at the book's 100 dpi), so the page does not shrink it below ~9 px."""
    bm = bookmap.load_book_map()
    fig = bookmap.draw_book_map(bookmap.book_nodes(book_map=bm), bm)
    assert fig.get_size_inches()[0] <= 10.5
    sizes = [t.get_fontsize() for t in fig.axes[0].texts]
    assert len(sizes) >= 128 and min(sizes) >= 8
