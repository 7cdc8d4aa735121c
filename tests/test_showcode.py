import pytest

from lib import seed_everything
from lib.showcode import show_code


def test_whole_function_with_path_lines_and_test():
    block = show_code(seed_everything, test="tests/test_core.py")
    assert block.path == "lib/__init__.py"
    assert block.source.startswith("def seed_everything(")
    assert block.last_line - block.first_line == block.source.count("\n")
    html = block._repr_html_()
    assert "<details" in html and "tests/test_core.py" in html and "seed_everything" in html
    assert "```python" in block._repr_markdown_()


def test_markers_narrow_the_block_and_dedent():
    block = show_code(show_code, start="path = _lib_file", stop="return CodeBlock")
    assert block.source.startswith("path = _lib_file(obj)")
    assert block.source.rstrip().endswith("open=open)")
    assert block.first_line > show_code.__code__.co_firstlineno


@pytest.mark.parametrize("kwargs, msg", [
    ({"start": "no such line"}, "start marker"),
    ({"stop": "no such line"}, "stop marker"),
    ({"test": "tests/test_missing.py"}, "existing test file"),
])
def test_bad_arguments_say_what_was_expected(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        show_code(seed_everything, **kwargs)


def test_rejects_code_outside_lib():
    with pytest.raises(ValueError, match="under lib/"):
        show_code(pytest.raises)
    with pytest.raises(TypeError, match="function, class or method"):
        show_code(3)


def test_decorated_function_is_unwrapped_to_its_lib_source():
    from lib.llm.generate import generate  # decorated with @torch.no_grad()

    block = show_code(generate, test="tests/test_llm_generate.py", start="cache = model.new_cache")
    assert block.path == "lib/llm/generate.py" and "cache = model.new_cache" in block.source.splitlines()[0]
