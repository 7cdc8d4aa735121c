"""Function calling: a model's JSON tool call, validated, then run by an allow-listed function.

Book: seed-32 (Function Calling).

Sections, top to bottom:

1. **Tools** — each tool is a JSON Schema for its arguments and a local function:
   ``calculator`` (``+ - *`` on integers, evaluated by :func:`lib.data.evaluate_expression`, a
   small parser: nothing the model writes is ever passed to ``eval``) and ``lookup`` (a fact of the
   world). :class:`ToolBox` holds the allow-list and a log of every call it executed.
2. **Parsing and validation** — :meth:`ToolBox.check` turns the model's text into a
   :class:`ToolCall` or raises :class:`ToolCallError` with a ``kind`` (``"oversized"``,
   ``"malformed"``, ``"unknown_tool"``, ``"invalid_arguments"``) and a message that says what was
   expected. Validation comes before execution, so a rejected call has no effect.
3. **The agent loop** — :func:`call_prompt` (question -> the model writes a call),
   :func:`result_prompt` (the result is fed back -> the model writes the final answer),
   :func:`run_agent` (batched, greedy) returning one :class:`Trace` per question, scored by the
   verifiers (:func:`lib.data.verify_answer`, :func:`lib.rag.answer_correct`).
4. **Data and the shipped fine-tune** ``tiny-lm-tools`` (``python -m lib.toolcall train``):
   :func:`tool_problems` (arithmetic beyond the one-step facts the LM knows), :func:`tool_examples`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import re
import sys
import time
from typing import Callable, Sequence

import numpy as np

from lib.data.arithmetic import ArithProblem, evaluate_expression, is_fact_chain
from lib.data.verify import verify_answer
from lib.data.world import RELATIONS, Fact, World, make_world

# ----------------------------------------------------------------------------- 1. tools

#: Longest tool-call text accepted (characters); longer text is refused before parsing.
MAX_CALL_CHARS = 200

_NUMBER = "[0-9]{1,4}"
#: Up to 5 operations on integers of at most 4 digits, single spaces around each operator.
EXPRESSION_PATTERN = f"^{_NUMBER}( [-+*] {_NUMBER}){{0,5}}$"

CALCULATOR_SCHEMA = {
    "type": "object",
    "properties": {
        "expression": {"type": "string", "maxLength": 60, "pattern": EXPRESSION_PATTERN}
    },
    "required": ["expression"],
    "additionalProperties": False,
}
LOOKUP_SCHEMA = {
    "type": "object",
    "properties": {
        "subject": {"type": "string", "pattern": "^[A-Z][a-z]{1,15}$"},
        "relation": {"type": "string", "enum": list(RELATIONS)},
    },
    "required": ["subject", "relation"],
    "additionalProperties": False,
}


@dataclasses.dataclass(frozen=True)
class ToolCall:
    """A validated call: the tool's ``name`` and its ``arguments``."""

    name: str
    arguments: dict


class ToolCallError(ValueError):
    """A rejected tool call; ``kind`` is one of :data:`ERROR_KINDS`."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind


#: Why a call can be rejected (before anything runs), or fail inside the tool.
ERROR_KINDS = ("oversized", "malformed", "unknown_tool", "invalid_arguments", "tool_error")


def _calculator(expression: str) -> str:
    if not re.fullmatch(
        EXPRESSION_PATTERN, expression
    ):  # defence in depth: the schema said so already
        raise ToolCallError(
            "invalid_arguments", f"not an expression the calculator accepts: {expression!r}"
        )
    return str(evaluate_expression(expression))


class ToolBox:
    """The allow-list of tools for one ``world``; ``log`` lists every call that was executed."""

    def __init__(self, world: World):
        if not isinstance(world, World):
            raise TypeError(f"world must be a lib.data.World, got {type(world).__name__}")
        self.world = world
        self.tools: dict[str, tuple[dict, Callable[..., str]]] = {
            "calculator": (CALCULATOR_SCHEMA, _calculator),
            "lookup": (LOOKUP_SCHEMA, self._lookup),
        }
        self.log: list[ToolCall] = []

    def _lookup(self, subject: str, relation: str) -> str:
        if subject not in self.world.people:
            raise ToolCallError("tool_error", f"lookup: no person called {subject!r} in this world")
        return self.world.query(subject, relation)

    def schemas(self) -> dict[str, dict]:
        """``{tool name: JSON Schema of its arguments}``."""
        return {n: s for n, (s, _) in self.tools.items()}

    def check(self, text: str) -> ToolCall:
        """Parse and validate ``text`` as ``{"name": <tool>, "arguments": {...}}``; execute nothing.

        Raises :class:`ToolCallError` naming what is wrong.
        """
        import jsonschema

        if not isinstance(text, str):
            raise ToolCallError(
                "malformed", f"a tool call is a JSON string, got {type(text).__name__}"
            )
        if len(text) > MAX_CALL_CHARS:
            raise ToolCallError(
                "oversized", f"{len(text)} characters; a call may have at most {MAX_CALL_CHARS}"
            )
        try:
            obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
        except (json.JSONDecodeError, ValueError, RecursionError) as exc:
            raise ToolCallError("malformed", f"not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise ToolCallError("malformed", f"expected a JSON object, got {type(obj).__name__}")
        if set(obj) != {"name", "arguments"}:
            raise ToolCallError(
                "malformed", f"expected exactly the keys 'name' and 'arguments', got {sorted(obj)}"
            )
        name, args = obj["name"], obj["arguments"]
        if not isinstance(name, str) or name not in self.tools:
            raise ToolCallError(
                "unknown_tool", f"{name!r} is not one of the allowed tools {sorted(self.tools)}"
            )
        try:
            jsonschema.validate(args, self.tools[name][0])
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "arguments"
            raise ToolCallError("invalid_arguments", f"{name}: {where}: {exc.message}") from None
        # Python's re.search lets "$" match before a final newline: patterns must match in full
        for key, spec in self.tools[name][0]["properties"].items():
            if "pattern" in spec and key in args and not re.fullmatch(spec["pattern"], args[key]):
                raise ToolCallError(
                    "invalid_arguments",
                    f"{name}: {key}: {args[key]!r} does not match " f"{spec['pattern']!r} in full",
                )
        return ToolCall(name, dict(args))

    def dispatch(self, call: ToolCall) -> str:
        """Run a validated call (from :meth:`check`) and return its result as text."""
        if not isinstance(call, ToolCall):
            raise TypeError(f"dispatch needs a ToolCall from check(), got {type(call).__name__}")
        _, fn = self.tools[call.name]
        self.log.append(call)
        return fn(**call.arguments)

    def execute(self, text: str) -> str:
        """:meth:`check` then :meth:`dispatch`."""
        return self.dispatch(self.check(text))


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError(f"duplicate keys {dup}")
    return dict(pairs)


def _no_constants(name):
    raise ValueError(f"{name} is not allowed")


def format_call(name: str, **arguments) -> str:
    """The canonical JSON text of a call (what the model is trained to write)."""
    return json.dumps({"name": name, "arguments": arguments})


# ----------------------------------------------------------------------------- 3. the agent loop

TOOLS_HEADER = "Tools: calculator, lookup"


def call_prompt(question: str) -> str:
    """First turn: ``Tools: calculator, lookup\\nQ: <question>\\nA:`` (the model writes a call)."""
    if not isinstance(question, str) or not question:
        raise ValueError("question must be a non-empty str")
    return f"{TOOLS_HEADER}\nQ: {question}\nA:"


def result_prompt(question: str, call_text: str, result: str) -> str:
    """Second turn: the first turn, the model's call and ``Result: <result>``; the model answers."""
    if not isinstance(call_text, str) or not isinstance(result, str):
        raise TypeError("call_text and result must be strings")
    return f"{call_prompt(question)} {call_text}\nResult: {result}\nA:"


@dataclasses.dataclass
class Trace:
    """One run of the loop: what the model wrote, what the tool box did, and the verdict."""

    question: str
    call_text: str
    call: ToolCall | None = None
    result: str | None = None
    error: str | None = None
    answer: str | None = None
    correct: bool = False


def _greedy(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    from lib.rag import answer_questions

    return answer_questions(model, tokenizer, prompts, max_new_tokens=max_new_tokens)


def run_agent(
    model,
    tokenizer,
    items: Sequence,
    toolbox: ToolBox,
    max_call_tokens: int = 96,
    max_answer_tokens: int = 16,
) -> list[Trace]:
    """The loop for a batch of questions, greedy: question -> call -> check -> dispatch -> result ->
    final answer -> verifier. ``items``: :class:`ArithProblem` (verified by
    :func:`lib.data.verify_answer`) or person :class:`Fact` of ``toolbox.world`` (verified by
    :func:`lib.rag.answer_correct`). A rejected call ends that question's run with its error."""
    from lib.rag import answer_correct

    if isinstance(items, (str, bytes)) or not items:
        raise ValueError("items must be a non-empty list of ArithProblem or Fact")
    questions = []
    for it in items:
        if isinstance(it, ArithProblem):
            questions.append(it.question)
        elif isinstance(it, Fact):
            questions.append(toolbox.world.question(it)[0])
        else:
            raise TypeError(f"items must be ArithProblem or Fact, got {type(it).__name__}")
    calls = _greedy(model, tokenizer, [call_prompt(q) for q in questions], max_call_tokens)
    traces = [Trace(q, c) for q, c in zip(questions, calls)]
    for t in traces:
        try:
            t.call = toolbox.check(t.call_text)
            t.result = toolbox.dispatch(t.call)
        except ToolCallError as exc:
            t.error = str(exc)
    todo = [i for i, t in enumerate(traces) if t.result is not None]
    if todo:
        answers = _greedy(
            model,
            tokenizer,
            [
                result_prompt(traces[i].question, traces[i].call_text, traces[i].result)
                for i in todo
            ],
            max_answer_tokens,
        )
        for i, a in zip(todo, answers):
            traces[i].answer = a
    for t, it in zip(traces, items):
        if t.answer is not None:
            t.correct = (
                verify_answer(it, t.answer)
                if isinstance(it, ArithProblem)
                else answer_correct(toolbox.world, it, t.answer)
            )
    return traces


def answer_without_tools(
    model, tokenizer, problems: Sequence[ArithProblem], max_new_tokens: int = 48
) -> list[str]:
    """The baseline: the model answers ``Q: <question>\\nA:`` (the pretraining format) alone."""
    return _greedy(model, tokenizer, [f"Q: {p.question}\nA:" for p in problems], max_new_tokens)


# ------------------------------------------------------------------ 4. data and the fine-tune

#: The shipped function-calling checkpoint.
TOOLS_MODEL = "tiny-lm-tools"
#: The world and the arithmetic seed the shipped model is evaluated on.
EVAL_WORLD = 800_001
EVAL_SEED = 800


def tool_problems(n: int, seed=0, exclude: Sequence[str] = ()) -> list[ArithProblem]:
    """``n`` distinct problems with 1–2 operations on two-digit numbers (10–99), each
    intermediate value in ``[0, 9999]``, at least one step outside the one-step facts."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng([int(seed), 32])
    seen, out = set(exclude), []
    while len(out) < n:
        k = int(rng.integers(1, 3))
        toks = [str(int(rng.integers(10, 100)))]
        for _ in range(k):
            toks += [str(rng.choice(["+", "-", "*"])), str(int(rng.integers(10, 100)))]
        p = ArithProblem.from_expression(" ".join(toks))
        if (
            p.expression in seen
            or is_fact_chain(p)
            or not all(0 <= s.result <= 9999 for s in p.steps)
        ):
            continue
        seen.add(p.expression)
        out.append(p)
    return out


def training_problems(n_arith: int = 3000, seed: int = 0) -> list[ArithProblem]:
    """The arithmetic problems :func:`make_tools_model` trains on (never the evaluation set)."""
    return tool_problems(
        n_arith, seed, exclude=[p.expression for p in tool_problems(200, EVAL_SEED)]
    )


def held_out_problems(
    n: int, seed: int, n_arith: int = 3000, train_seed: int = 0
) -> list[ArithProblem]:
    """``n`` :func:`tool_problems` from ``seed`` that the shipped model did not train on."""
    train = [p.expression for p in training_problems(n_arith, train_seed)]
    return tool_problems(n, np.random.default_rng([int(seed), 33]), exclude=train)


def tool_examples(tokenizer, problems: Sequence[ArithProblem], worlds: Sequence[World]) -> list:
    """SFT pairs for both turns: (call prompt -> call) and (result prompt -> final answer), for each
    arithmetic problem and for every knowledge question of each world."""
    from lib.rag import knowledge_questions

    def pair(prompt, completion):
        return tokenizer.encode(prompt), tokenizer.encode(" " + completion) + [tokenizer.eos_id]

    out = []
    for p in problems:
        call = format_call("calculator", expression=p.expression)
        out += [
            pair(call_prompt(p.question), call),
            pair(result_prompt(p.question, call, str(p.answer)), p.direct_answer),
        ]
    for w in worlds:
        for q, f in knowledge_questions(w):
            call = format_call("lookup", subject=f.subject, relation=f.relation)
            out += [
                pair(call_prompt(q), call),
                pair(result_prompt(q, call, f.value), w.sentence(f, "en", 0)),
            ]
    return out


def evaluate_tools(
    model,
    tokenizer,
    n_arith: int = 200,
    world_seed: int = EVAL_WORLD,
    seed: int = EVAL_SEED,
    base=None,
    n_facts: int | None = None,
) -> dict:
    """End-to-end accuracy of the loop on ``n_arith`` fresh :func:`tool_problems` and on the first
    ``n_facts`` (default all) knowledge questions of a fresh world; with ``base`` also the no-tool
    baseline on the arithmetic."""
    from lib.rag import knowledge_questions

    world = make_world(world_seed)
    box = ToolBox(world)
    probs = tool_problems(n_arith, seed)
    facts = [f for _, f in knowledge_questions(world)][:n_facts]
    ta, tf = run_agent(model, tokenizer, probs, box), run_agent(model, tokenizer, facts, box)
    res = {
        "arithmetic": float(np.mean([t.correct for t in ta])),
        "lookup": float(np.mean([t.correct for t in tf])),
        "rejected": int(sum(t.error is not None for t in ta + tf)),
    }
    if base is not None:
        ans = answer_without_tools(base, tokenizer, probs)
        res["arithmetic_without_tools"] = float(
            np.mean([verify_answer(p, a) for p, a in zip(probs, ans)])
        )
    return res


def make_tools_model(
    out=None,
    steps: int = 800,
    batch_size: int = 16,
    n_arith: int = 3000,
    n_worlds: int = 12,
    seed: int = 0,
    command: str | None = None,
    progress: bool = True,
) -> dict:
    """Fine-tune ``tiny-lm`` to call tools; save it (default ``data/checkpoints/tiny-lm-tools``)."""
    from lib import seed_everything
    from lib.align.sft import SFTConfig, sft_train
    from lib.llm.checkpoint import CHECKPOINT_DIR, load_model, save_checkpoint
    from lib.llm.pretrain import tokenizer_sha256
    from lib.llm.tokenizer import load_tokenizer
    from lib.provenance import git_commit, machine

    seed_everything(seed)
    tok = load_tokenizer()
    model = load_model("tiny-lm")
    probs = training_problems(n_arith, seed)
    worlds = [make_world(20_000 + seed * 1000 + i) for i in range(n_worlds)]
    examples = tool_examples(tok, probs, worlds)
    cfg = SFTConfig(
        steps=steps, batch_size=batch_size, lr=1e-3, warmup_steps=min(50, steps), seed=seed
    )
    hist = sft_train(model, examples, tok.eos_id, cfg, progress=progress)
    base = load_model("tiny-lm")
    metrics = evaluate_tools(model, tok, base=base)
    metrics["subset40"] = evaluate_tools(model, tok, n_arith=40, base=base, n_facts=40)
    every = max(1, steps // 100)
    meta = {
        "name": TOOLS_MODEL,
        "description": "tiny-lm fine-tuned (completion-only SFT) to answer with a JSON tool call "
        "(calculator or lookup), then with the final answer once the result is fed back.",
        "base": "tiny-lm",
        "seed": seed,
        "train_config": dataclasses.asdict(cfg),
        "data": {
            "builder": "lib.toolcall.tool_examples",
            "n_arith": n_arith,
            "n_worlds": n_worlds,
            "examples": len(examples),
        },
        "tokenizer_sha256": tokenizer_sha256(),
        "metrics": {
            **metrics,
            "train_time_s": round(hist["time_s"], 1),
            "final_loss": hist["loss"][-1],
            "note": "lib.toolcall.evaluate_tools(model, tok, base=tiny-lm): greedy end-to-end "
            f"accuracy on 200 tool_problems(seed={EVAL_SEED}) and world {EVAL_WORLD}",
        },
        "history": {
            "step": hist["step"][::every],
            "loss": [round(x, 5) for x in hist["loss"][::every]],
        },
        "machine": machine(),
        "commit": git_commit(),
        "command": command or "python -m lib.toolcall train",
    }
    save_checkpoint(model, pathlib.Path(out) if out else CHECKPOINT_DIR / TOOLS_MODEL, meta)
    return meta


def reevaluate(command: str) -> dict:
    """Recompute the shipped model's metrics with :func:`evaluate_tools` and record them (and the
    command) in its ``meta.json``; the weights are untouched."""
    import json

    from lib.llm.checkpoint import CHECKPOINT_DIR, load_meta, load_model
    from lib.llm.tokenizer import load_tokenizer

    meta = load_meta(TOOLS_MODEL)
    res = evaluate_tools(load_model(TOOLS_MODEL), load_tokenizer(), base=load_model("tiny-lm"))
    meta["metrics"].update(res)
    meta["metrics"]["subset40"] = evaluate_tools(
        load_model(TOOLS_MODEL),
        load_tokenizer(),
        n_arith=40,
        base=load_model("tiny-lm"),
        n_facts=40,
    )
    meta["metrics_command"] = command
    path = CHECKPOINT_DIR / TOOLS_MODEL / "meta.json"
    path.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return meta


def main(argv=None) -> int:
    import torch

    ap = argparse.ArgumentParser(prog="python -m lib.toolcall", description="Make tiny-lm-tools.")
    ap.add_argument("action", choices=["train", "evaluate"])
    ap.add_argument("--out", default=None)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cmd = "python -m lib.toolcall " + " ".join(argv if argv is not None else sys.argv[1:])
    t0 = time.perf_counter()
    if args.action == "evaluate":  # re-measure the shipped model's metrics into its meta.json
        meta = reevaluate(cmd.strip())
        print(meta["metrics"], f"{time.perf_counter() - t0:.0f} s")
        return 0
    meta = make_tools_model(
        args.out,
        args.steps,
        args.batch_size,
        seed=args.seed,
        command=cmd.strip(),
        progress=not args.no_progress,
    )
    print(meta["metrics"], f"{time.perf_counter() - t0:.0f} s")
    return 0


__all__ = [
    "MAX_CALL_CHARS",
    "EXPRESSION_PATTERN",
    "CALCULATOR_SCHEMA",
    "LOOKUP_SCHEMA",
    "ToolCall",
    "ToolCallError",
    "ERROR_KINDS",
    "ToolBox",
    "format_call",
    "TOOLS_HEADER",
    "call_prompt",
    "result_prompt",
    "Trace",
    "run_agent",
    "answer_without_tools",
    "tool_problems",
    "training_problems",
    "held_out_problems",
    "tool_examples",
    "TOOLS_MODEL",
    "EVAL_WORLD",
    "EVAL_SEED",
    "evaluate_tools",
    "make_tools_model",
]

if __name__ == "__main__":
    sys.exit(main())
