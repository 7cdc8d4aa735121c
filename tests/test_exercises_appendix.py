"""Part 11's exercise checkers accept correct answers and reject plausible wrong ones."""
import re

from lib import bookindex
from lib.exercises.appendix import check_cited_keys, check_missing_fields, check_sections_of_module


def test_sections_of_module():
    assert check_sections_of_module(lambda rows, module: [r.label for r in rows
                                                          if r.notebook and module in r.modules])
    # forgetting that unwritten entries have no section
    assert not check_sections_of_module(lambda rows, module: [r.label for r in rows if module in r.modules])
    assert not check_sections_of_module(lambda rows, module: [])


def test_cited_keys():
    assert check_cited_keys(bookindex.cited_keys)
    naive = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
    # a plain regex also counts roles written about inside code
    assert not check_cited_keys(lambda text: [k.strip() for g in naive.findall(text) for k in g.split(",")])


def test_missing_fields():
    def right(entry_type, fields):
        need = bookindex.REQUIRED_FIELDS[entry_type] | {"author"}
        if fields.get("editor", "").strip():
            need -= {"author"}
        return {f for f in need if not str(fields.get(f, "")).strip()}

    assert check_missing_fields(right)
    # an empty field counts as missing
    assert not check_missing_fields(lambda entry_type, fields: (
        bookindex.REQUIRED_FIELDS[entry_type] | {"author"}) - set(fields) - ({"author"} if "editor" in fields else set()))


def test_stubs_are_not_attempted():
    def stub(*args, **kwargs):
        raise NotImplementedError

    for check in (check_sections_of_module, check_cited_keys, check_missing_fields):
        rep = check(stub)
        assert not rep and not rep.attempted
