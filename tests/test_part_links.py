"""lib.book.part_first_doc / part_link: a mention of a part links to it once it is in the TOC."""
import pytest
import yaml

from lib import book

ENTRIES = [
    book.SeedEntry("header-1", 1, "01-a", "seed-1", "一", "One", "https://x", "take"),
    book.SeedEntry("header-2", 2, "02-b", "seed-2", "二", "Two", "https://x", "take"),
    book.SeedEntry("header-3", 3, "03-c", "seed-3", "三", "Three", "https://x", "take"),
]


def _toc(tmp_path, files):
    toc = {"format": "jb-book", "root": "intro",
           "parts": [{"caption": "P", "chapters": [{"file": f} for f in files]}]}
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump(toc))
    return tmp_path


def test_part_in_toc_links_to_its_first_document(tmp_path):
    root = _toc(tmp_path, ["chapters/01-a/x", "chapters/02-b/second", "chapters/02-b/first"])
    assert book.part_first_doc(2, root, ENTRIES) == "chapters/02-b/second"  # TOC order
    page = "chapters/01-a/x"
    link = book.part_link(2, page, root=root, seed_map=ENTRIES)
    assert link == "[Part 2](../02-b/second.html)"  # relative to the page, built HTML
    assert book.part_link(1, "chapters/02-b/first", "the start", root, ENTRIES) == (
        "[the start](../01-a/x.html)")
    assert book.part_link(2, "intro", "2", root, ENTRIES) == "[2](chapters/02-b/second.html)"


def test_part_not_in_toc_is_plain_text(tmp_path):
    root = _toc(tmp_path, ["chapters/01-a/x"])
    assert book.part_first_doc(3, root, ENTRIES) is None
    assert book.part_link(3, "chapters/01-a/x", root=root, seed_map=ENTRIES) == "Part 3"
    assert book.part_link(3, "chapters/01-a/x", "3", root, ENTRIES) == "3"


def test_folder_prefix_is_exact(tmp_path):
    # a folder whose name starts with another part's folder must not count
    root = _toc(tmp_path, ["chapters/03-cx/y", "chapters/03-c/z"])
    assert book.part_first_doc(3, root, ENTRIES) == "chapters/03-c/z"


def test_unknown_part_is_an_error(tmp_path):
    root = _toc(tmp_path, ["chapters/01-a/x"])
    with pytest.raises(ValueError, match="part 7"):
        book.part_first_doc(7, root, ENTRIES)


def test_the_real_book_links_parts_in_its_toc():
    toc = book.toc_files(book.ROOT)
    for part in range(1, 12):
        doc = book.part_first_doc(part)
        assert (doc is None) == (not any(
            d.startswith(f"chapters/{e.chapter}/") for d in toc
            for e in book.load_seed_map() if e.part == part))
