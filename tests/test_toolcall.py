"""lib.toolcall: schemas, parsing, validation (adversarial strings: rejected, nothing executed),
dispatch, the agent loop, and the shipped fine-tune tiny-lm-tools."""

import json

import pytest

from lib.data import ArithProblem, Fact, is_fact_chain, make_world
from lib.toolcall import (
    CALCULATOR_SCHEMA,
    LOOKUP_SCHEMA,
    MAX_CALL_CHARS,
    TOOLS_MODEL,
    ToolBox,
    ToolCall,
    ToolCallError,
    Trace,
    call_prompt,
    format_call,
    result_prompt,
    run_agent,
    tool_examples,
    tool_problems,
)


@pytest.fixture()
def box():
    return ToolBox(make_world(5))


def test_schemas_are_valid_json_schema():
    import jsonschema

    for s in (CALCULATOR_SCHEMA, LOOKUP_SCHEMA):
        jsonschema.Draft202012Validator.check_schema(s)


def test_good_calls(box):
    assert box.execute(format_call("calculator", expression="12 * 34 + 5")) == "413"
    assert box.execute(format_call("calculator", expression="7")) == "7"
    name = next(iter(box.world.people))
    assert (
        box.execute(format_call("lookup", subject=name, relation="pet"))
        == box.world.people[name]["pet"]
    )
    assert [c.name for c in box.log] == ["calculator", "calculator", "lookup"]
    call = box.check('  {"arguments": {"expression": "1 + 2"}, "name": "calculator"}  ')
    assert call == ToolCall("calculator", {"expression": "1 + 2"})
    assert len(box.log) == 3  # check() executes nothing


ADVERSARIAL = {
    "malformed": [
        "",
        "   ",
        "calculator(1 + 2)",
        "{",
        '{"name": "calculator", "arguments": {"expression": "1 + 2"}',
        "[1, 2]",
        '"calculator"',
        "null",
        "1e999",
        "NaN",
        '{"name": "calculator", "arguments": {"expression": "1 + 2"}, "extra": 1}',
        '{"name": "calculator"}',
        '{"arguments": {}}',
        '{"name": "calculator", "name": "lookup", "arguments": {"expression": "1"}}',
        '{"name": "calculator", "arguments": {"expression": "1", "expression": "2"}}',
        '{"name": "calculator", "arguments": {"expression": NaN}}',
        '{"name": "calculator", "arguments": {"expression": "1 + 2"}} trailing',
        "[" * 150 + "]" * 45,
    ],
    "unknown_tool": [
        '{"name": "eval", "arguments": {"expression": "1 + 2"}}',
        '{"name": "os.system", "arguments": {"cmd": "rm -rf /"}}',
        '{"name": "__import__", "arguments": {}}',
        '{"name": "Calculator", "arguments": {"expression": "1 + 2"}}',
        '{"name": ["calculator"], "arguments": {"expression": "1 + 2"}}',
        '{"name": null, "arguments": {}}',
    ],
    "invalid_arguments": [
        '{"name": "calculator", "arguments": {"expression": "__import__(\'os\').system(\'ls\')"}}',
        '{"name": "calculator", "arguments": {"expression": "2 ** 99999"}}',
        '{"name": "calculator", "arguments": {"expression": "9999999 * 9999999"}}',
        '{"name": "calculator", "arguments": {"expression": "1 / 0"}}',
        '{"name": "calculator", "arguments": {"expression": "1 + 2\\n"}}',
        '{"name": "calculator", "arguments": {"expression": "\\u0663 + 1"}}',  # Arabic-Indic digit
        '{"name": "calculator", "arguments": {"expression": "1 + 1 + 1 + 1 + 1 + 1 + 1"}}',
        '{"name": "calculator", "arguments": {"expression": 12}}',
        '{"name": "calculator", "arguments": {"expression": ""}}',
        '{"name": "calculator", "arguments": {}}',
        '{"name": "calculator", "arguments": {"expression": "1 + 2", "shell": true}}',
        '{"name": "calculator", "arguments": "1 + 2"}',
        '{"name": "lookup", "arguments": {"subject": "Mara", "relation": "password"}}',
        '{"name": "lookup", "arguments": {"subject": "../etc/passwd", "relation": "pet"}}',
        '{"name": "lookup", "arguments": {"subject": "Mara"}}',
    ],
    "oversized": [
        '{"name": "calculator", "arguments": {"expression": "' + "1 + " * 60 + '1"}}',
        " " * (MAX_CALL_CHARS + 1),
    ],
}


@pytest.mark.parametrize("kind,text", [(k, t) for k, ts in ADVERSARIAL.items() for t in ts])
def test_adversarial_calls_are_rejected_and_nothing_runs(box, kind, text, monkeypatch):
    import lib.toolcall as tc

    ran = []
    monkeypatch.setattr(tc, "evaluate_expression", lambda e: ran.append(e) or 0)
    monkeypatch.setattr(box.world, "query", lambda *a: ran.append(a) or "x")
    with pytest.raises(ToolCallError) as info:
        box.execute(text)
    assert info.value.kind == kind, str(info.value)
    assert str(info.value).startswith(kind + ":") and len(str(info.value)) > len(kind) + 5
    assert box.log == [] and ran == []


def test_non_string_and_tool_errors(box):
    with pytest.raises(ToolCallError, match="malformed"):
        box.check({"name": "calculator"})
    with pytest.raises(TypeError, match="ToolCall"):
        box.dispatch({"name": "calculator", "arguments": {"expression": "1"}})
    with pytest.raises(ToolCallError) as info:  # valid call, but no such person: the tool says so
        box.execute(format_call("lookup", subject="Zzz", relation="pet"))
    assert info.value.kind == "tool_error" and "Zzz" in str(info.value)
    with pytest.raises(TypeError):
        ToolBox("world")


def test_no_eval_in_the_module():
    import inspect

    import lib.toolcall as tc

    src = inspect.getsource(tc)
    assert "eval(" not in src.replace("evaluate_expression(", "") and "exec(" not in src


def test_tool_problems_are_outside_the_facts():
    ps = tool_problems(300, 0)
    assert len({p.expression for p in ps}) == 300
    assert not any(is_fact_chain(p) for p in ps)
    assert all(0 <= s.result <= 9999 for p in ps for s in p.steps)
    assert tool_problems(5, 0) == ps[:5]
    assert not set(
        p.expression for p in tool_problems(50, 1, exclude=[p.expression for p in ps])
    ) & set(p.expression for p in ps)
    with pytest.raises(ValueError):
        tool_problems(-1)


def test_prompts_and_examples_agree_with_the_box():
    from lib.llm.tokenizer import load_tokenizer

    tok = load_tokenizer()
    world = make_world(7)
    box = ToolBox(world)
    p = ArithProblem.from_expression("23 * 45 - 17")
    call = format_call("calculator", expression=p.expression)
    assert box.execute(call) == str(p.answer)
    assert result_prompt(p.question, call, "1018").startswith(call_prompt(p.question) + " " + call)
    ex = tool_examples(tok, [p], [world])
    assert len(ex) == 2 + 2 * 6 * len(world.people)
    for prompt, completion in ex[1::2]:  # every training call is a call the box accepts
        text = tok.decode(prompt, skip_special_tokens=True)
        sent = text.split("\nA: ", 1)[1].split("\nResult:")[0]
        box.check(sent)
    assert json.loads(call) == {"name": "calculator", "arguments": {"expression": "23 * 45 - 17"}}


def test_run_agent_with_a_scripted_model(monkeypatch):
    import lib.toolcall as tc

    world = make_world(7)
    name = next(iter(world.people))
    f = Fact(name, "job", world.people[name]["job"])
    items = [ArithProblem.from_expression("23 * 45"), ArithProblem.from_expression("11 + 12"), f]
    script = {
        "Tools": [
            format_call("calculator", expression="23 * 45"),
            'os.system("x")',
            format_call("lookup", subject=name, relation="job"),
        ],
        "Result": ["The answer is 1035.", world.sentence(f)],
    }

    def fake(model, tok, prompts, n):
        return script["Result" if "Result:" in prompts[0] else "Tools"][: len(prompts)]

    monkeypatch.setattr(tc, "_greedy", fake)
    box = ToolBox(world)
    traces = run_agent(None, None, items, box)
    assert [t.correct for t in traces] == [True, False, True]
    assert traces[1].error.startswith("malformed") and traces[1].answer is None
    assert traces[0].result == "1035" and len(box.log) == 2
    assert isinstance(traces[0], Trace)
    with pytest.raises(TypeError):
        run_agent(None, None, ["What is 1 + 1?"], box)


def test_shipped_tools_model_reproduces_its_metric():
    from lib.llm.checkpoint import load_model
    from lib.llm.pretrain import tokenizer_sha256
    from lib.llm.tokenizer import load_tokenizer
    from lib.toolcall import evaluate_tools

    model, meta = load_model(TOOLS_MODEL, with_meta=True)
    assert meta["tokenizer_sha256"] == tokenizer_sha256()
    for key in ("seed", "command", "commit", "machine", "train_config", "metrics"):
        assert key in meta
    tok = load_tokenizer()
    # greedy, so reproducible: the recorded subset (40 problems, 40 lookups), one flip of slack
    res = evaluate_tools(model, tok, n_arith=40, base=load_model("tiny-lm"), n_facts=40)
    m = meta["metrics"]
    for k in ("arithmetic", "lookup", "arithmetic_without_tools"):
        assert res[k] == pytest.approx(m["subset40"][k], abs=1 / 40 + 1e-9), k
    assert m["arithmetic"] > m["arithmetic_without_tools"] + 0.5
