"""Distillation of chain-of-thought reasoning: a teacher writes worked solutions, the verifier
filters them, students learn from them by supervised fine-tuning.

The recipe, on the book's fact-chaining task (:func:`lib.align.tasks.chain_arithmetic_task`):

1. **The teacher writes.** ``tiny-lm-arith-sft`` — the best model the book ships for this task —
   samples ``k`` worked solutions (temperature 1) to each ``rl_train`` question
   (:func:`teacher_traces`). No solution of these questions is ever shown to anyone.
2. **The verifier judges.** :func:`lib.data.verify_answer` marks each trace right or wrong by its
   final answer (:func:`judge_traces`); :func:`filter_traces` keeps the right ones. This is
   *rejection sampling*, the way DeepSeek-R1 curated its ~800k reasoning samples for distilling
   into smaller models (DeepSeek-AI 2025).
3. **Students learn.** Every student starts from the same *student base* — the pretrained
   ``tiny-lm`` fine-tuned on the 674 one-step facts only, so it can do one-step arithmetic but
   has never seen a two-step question — and is fine-tuned with the book's completion-only SFT
   (:func:`lib.align.sft.sft_train`) on the facts plus one training set (:func:`distill_sets`):

   * ``filtered``: the verifier-correct traces (rationale + answer);
   * ``unfiltered``: as many traces drawn at random from all of them, right or wrong (equal
     count: the difference is the filter, not the amount of data);
   * ``answer-only``: for the same questions as ``filtered``, the teacher's correct final answer
     alone, ``The answer is N.`` — no rationale (the seed-93 contrast);
   * ``filtered-n``: random subsets of ``n`` filtered traces (accuracy vs number of traces).

4. **Evaluation**, per held-out question and paired (:func:`evaluate_hits`, :func:`compare`):
   greedy hits (exact McNemar test, :func:`lib.llm.reasoning.mcnemar_exact`) and sampled hits
   (paired z over questions, :func:`lib.align.tasks.paired_gain`).

``python -m lib.align.cot_distill`` runs it all (:func:`train_cot_distill`) and writes the
shipped artefact ``data/checkpoints/cot-distill``: ``results.json`` (the per-question hits of
teacher and students, the trace statistics), ``meta.json`` (provenance) and the filtered
student's weights (``student-filtered/``, 3.4 MB), which the notebook re-evaluates.

Book: seed-93, seed-94.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import pathlib
import sys
import time
from typing import Sequence

import numpy as np
import torch

from lib.align.sft import SFTConfig, sft_train
from lib.data import ArithProblem, check_steps, parse_steps, verify_answer
from lib.runs import Run, Stopwatch, TrainLog, check_int, check_positive

TEACHER = "tiny-lm-arith-sft"
STUDENT_BASE = "tiny-lm"
ARTEFACT = "cot-distill"
#: The students every run trains (plus ``filtered-n`` for each size of :attr:`CoTDistillConfig.sizes`).
STUDENTS = ("filtered", "unfiltered", "answer-only")


@dataclasses.dataclass
class CoTDistillConfig:
    """CoT distillation (module docstring).

    traces_per_question: k, the teacher's samples per ``rl_train`` question (temperature 1);
        DeepSeek-R1 kept several per prompt; 4 here.
    n_questions: how many ``rl_train`` questions the teacher answers (the task has 1000).
    max_new_tokens: longest trace (a two-step solution is ~25 tokens).
    facts_steps: SFT steps that make the student base (``tiny-lm`` on the one-step facts).
    student_steps: SFT steps of each student (same for all: equal compute).
    batch_size, lr: of every SFT run (:class:`lib.align.sft.SFTConfig`, warm-up a tenth of the
        steps, cosine decay); 1e-3 as the book's cold start.
    sizes: smaller numbers of filtered traces for the accuracy-vs-traces students (each below the
        number of filtered traces; the full filtered set is the largest point).
    eval_samples: sampled answers per held-out question (temperature 1) besides the greedy one.
    seed: seeds the teacher's sampling, the subsets, the SFT batches and the evaluation.
    """

    traces_per_question: int = 4
    n_questions: int = 1000
    max_new_tokens: int = 32
    facts_steps: int = 500
    student_steps: int = 200
    batch_size: int = 32
    lr: float = 1e-3
    sizes: tuple = (200, 600)
    eval_samples: int = 8
    seed: int = 0

    def __post_init__(self):
        check_int(self, "traces_per_question", "n_questions", "max_new_tokens", "facts_steps",
                  "student_steps", "batch_size", "eval_samples")
        check_int(self, "seed", minimum=0)
        check_positive(self, "lr")
        self.sizes = tuple(self.sizes)
        if any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in self.sizes):
            raise ValueError(f"CoTDistillConfig.sizes must be positive ints, got {self.sizes!r}")
        if list(self.sizes) != sorted(set(self.sizes)):
            raise ValueError(f"CoTDistillConfig.sizes must be increasing and distinct, got {self.sizes!r}")


@dataclasses.dataclass
class Traces:
    """The teacher's traces: ``question`` (N,) index of each trace's problem, ``completions``
    (token lists, each ending with EOS when the teacher stopped), ``texts`` (decoded), and
    ``correct`` (N,) the verifier's verdicts (``None`` until :func:`judge_traces`)."""

    question: np.ndarray
    completions: list
    texts: list
    correct: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.texts)


@dataclasses.dataclass
class CoTDistillRun(Run):
    """A finished run: ``config``, ``log`` (one row per trained model: ``student``, ``examples``,
    ``final_loss``, ``cpu_s``), the ``traces``, the ``students`` (name -> model), ``hits`` (name ->
    ``{"greedy": (Q,) bool, "sampled": (Q, eval_samples) bool}``, teacher included) and ``stats``
    (:func:`trace_stats`)."""

    traces: Traces
    students: dict
    hits: dict
    stats: dict


def _check_problems(problems) -> list:
    probs = list(problems)
    if not probs or not all(isinstance(p, ArithProblem) for p in probs):
        raise TypeError("problems must be a non-empty sequence of ArithProblem")
    return probs


# ----------------------------------------------------------------------------- 1. the teacher writes
@torch.no_grad()
def teacher_traces(teacher, tokenizer, problems, k: int, generator: torch.Generator | None = None,
                   max_new_tokens: int = 32) -> Traces:
    """``k`` sampled worked solutions (temperature 1) per problem, problem-major order."""
    from lib.align.tasks import encode_prompts
    from lib.llm.reasoning import sample_continuations

    probs = _check_problems(problems)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    teacher.eval()
    prompts = [p for p in encode_prompts(tokenizer, probs) for _ in range(k)]
    rows = sample_continuations(teacher, prompts, [tokenizer.eos_id], max_new_tokens, generator)
    texts = [tokenizer.decode(r, skip_special_tokens=True) for r in rows]
    return Traces(np.repeat(np.arange(len(probs)), k), rows, texts)


# ----------------------------------------------------------------------------- 2. the verifier judges
def judge_traces(problems, traces: Traces) -> np.ndarray:
    """The verifier's verdict on every trace (bool (N,)); stored in ``traces.correct`` too."""
    probs = _check_problems(problems)
    if not isinstance(traces, Traces):
        raise TypeError(f"traces must be a Traces, got {type(traces).__name__}")
    if len(traces) and int(traces.question.max()) >= len(probs):
        raise ValueError(f"a trace refers to question {int(traces.question.max())}, but there are "
                         f"only {len(probs)} problems")
    traces.correct = np.array([verify_answer(probs[q], t) for q, t in zip(traces.question, traces.texts)],
                              dtype=bool)
    return traces.correct


def filter_traces(correct) -> np.ndarray:
    """Rejection sampling: the indices of the traces the verifier accepted (in order)."""
    c = np.asarray(correct)
    if c.ndim != 1 or c.dtype != bool:
        raise ValueError(f"correct must be a 1-D bool array of verdicts, got dtype {c.dtype}, shape {c.shape}")
    return np.flatnonzero(c)


def trace_stats(problems, traces: Traces, tokenizer=None) -> dict:
    """What the filter sees: ``yield`` (share accepted), ``coverage`` (share of questions with at
    least one accepted trace), ``steps_ok_given_correct`` (share of accepted traces whose every
    step the step checker also accepts: right answers reached by wrong steps slip through an
    outcome filter), ``errors`` (share of each :data:`lib.align.tasks.ERROR_KINDS` among all
    traces) and, with a tokenizer, ``mean_tokens``."""
    from lib.align.tasks import ERROR_KINDS, error_kind

    probs = _check_problems(problems)
    if traces.correct is None:
        raise ValueError("judge the traces first (judge_traces)")
    c = traces.correct
    per_q = np.zeros(len(probs), dtype=bool)
    per_q[traces.question[c]] = True
    asked = np.unique(traces.question)
    ok_steps = [all(check_steps(probs[q], parse_steps(t)))
                for q, t, ci in zip(traces.question, traces.texts, c) if ci]
    kinds = [error_kind(probs[q], t) for q, t in zip(traces.question, traces.texts)]
    out = {"traces": len(traces), "accepted": int(c.sum()), "yield": float(c.mean()),
           "coverage": float(per_q[asked].mean()),
           "steps_ok_given_correct": float(np.mean(ok_steps)) if ok_steps else float("nan"),
           "errors": {k: kinds.count(k) / len(kinds) for k in ERROR_KINDS}}
    if tokenizer is not None:
        out["mean_tokens"] = float(np.mean([len(r) for r in traces.completions]))
    return out


# ----------------------------------------------------------------------------- 3. the students' data
def distill_sets(problems, traces: Traces, tokenizer, sizes: Sequence[int] = (),
                 rng=None) -> dict[str, list]:
    """The students' training sets, ``(prompt_ids, completion_ids)`` pairs (module docstring):
    ``filtered``, ``unfiltered`` (equal count, drawn from all traces), ``answer-only`` (the
    filtered traces' questions with ``" The answer is N."``) and ``filtered-n`` for each size."""
    from lib.align.tasks import completion_text, encode_prompts

    probs = _check_problems(problems)
    if traces.correct is None:
        raise ValueError("judge the traces first (judge_traces)")
    rng = np.random.default_rng(rng)
    n_kept = int(np.count_nonzero(traces.correct))
    if n_kept == 0:
        raise ValueError("the verifier accepted no trace: nothing to distil")
    for n in sizes:
        if not 1 <= n < n_kept:
            raise ValueError(f"size {n} must be in [1, {n_kept}) (the number of filtered traces)")
    prompts = encode_prompts(tokenizer, probs)
    keep = filter_traces(traces.correct)  # rejection sampling: the traces the verifier accepts

    def trace(i):  # (prompt, the teacher's completion) of trace i
        return prompts[traces.question[i]], list(traces.completions[i])

    def answer_only(i):  # (prompt, " The answer is N." + EOS): no rationale
        q = traces.question[i]
        bare = completion_text(probs[q], steps=False)  # the teacher's (verified) answer
        return prompts[q], tokenizer.encode(bare) + [tokenizer.eos_id]

    everything = rng.choice(len(traces), len(keep), replace=False)  # right or wrong
    sets = {"filtered": [trace(i) for i in keep],
            "unfiltered": [trace(i) for i in everything],
            "answer-only": [answer_only(i) for i in keep]}
    for n in sizes:
        sets[f"filtered-{n}"] = [trace(i) for i in rng.choice(keep, n, replace=False)]
    return sets


def train_student(base, facts: list, examples: list, pad_id: int, steps: int, batch_size: int,
                  lr: float, seed: int) -> tuple[torch.nn.Module, dict]:
    """A copy of ``base`` fine-tuned (completion-only SFT) on ``facts + examples``; returns
    ``(student, history)``."""
    student = copy.deepcopy(base)
    cfg = SFTConfig(steps=steps, batch_size=batch_size, lr=lr,
                    warmup_steps=max(1, steps // 10), seed=seed)
    hist = sft_train(student, list(facts) + list(examples), pad_id, cfg)
    return student, hist


# ----------------------------------------------------------------------------- 4. paired evaluation
def evaluate_hits(model, tokenizer, problems, samples: int, seed: int, max_new_tokens: int = 32) -> dict:
    """Per-question hits on ``problems``: ``greedy`` (Q,) bool and ``sampled`` (Q, samples) bool
    (temperature 1, seeded)."""
    from lib.align.tasks import encode_prompts
    from lib.llm.generate import greedy_accuracy, sampled_hits

    probs = _check_problems(problems)
    ids = encode_prompts(tokenizer, probs)
    decode = lambda c: tokenizer.decode(c, skip_special_tokens=True)  # noqa: E731
    greedy = np.zeros(len(probs), dtype=bool)

    def record(i, c):
        greedy[i] = verify_answer(probs[i], decode(c))
        return greedy[i]

    model.eval()
    greedy_accuracy(model, ids, record, tokenizer.eos_id, max_new_tokens)
    sampled = sampled_hits(model, ids, lambda i, c: verify_answer(probs[i], decode(c)), tokenizer.eos_id,
                           samples, max_new_tokens, seed=seed)
    return {"greedy": greedy, "sampled": sampled}


def compare(hits_a: dict, hits_b: dict) -> dict:
    """A against B on the same questions: greedy accuracies, the exact McNemar test (``a_only``,
    ``b_only``, ``p_greedy``), and the paired gain of sampled accuracy (``gain`` = A - B, its
    ``z`` and two-sided normal ``p_sampled``)."""
    from scipy.stats import norm

    from lib.align.tasks import paired_gain
    from lib.llm.reasoning import mcnemar_exact

    a_only, b_only, p = mcnemar_exact(hits_a["greedy"], hits_b["greedy"])
    gain, z = paired_gain(hits_b["sampled"], hits_a["sampled"])
    return {"greedy_a": float(np.mean(hits_a["greedy"])), "greedy_b": float(np.mean(hits_b["greedy"])),
            "a_only": a_only, "b_only": b_only, "p_greedy": p, "gain": gain, "z": z,
            "p_sampled": float(2 * norm.sf(abs(z)))}


# ----------------------------------------------------------------------------- the whole recipe
def train_cot_distill(cfg: CoTDistillConfig | None = None, progress: bool = False, task=None,
                      teacher=None, tokenizer=None) -> CoTDistillRun:
    """Teacher traces -> verifier -> students (module docstring); every student and the teacher
    evaluated on the task's held-out questions."""
    from lib import progress as progress_bar
    from lib import seed_everything
    from lib.align.tasks import chain_arithmetic_task, sft_examples
    from lib.llm.checkpoint import load_model
    from lib.llm.tokenizer import load_tokenizer

    cfg = cfg or CoTDistillConfig()
    tok = tokenizer or load_tokenizer()
    task = task or chain_arithmetic_task()
    if cfg.n_questions > len(task.rl_train):
        raise ValueError(f"n_questions={cfg.n_questions} exceeds the {len(task.rl_train)} rl_train questions")
    teacher = teacher or load_model(TEACHER)
    seed_everything(cfg.seed)
    log, cpu0 = TrainLog(), time.process_time()
    probs = task.rl_train[:cfg.n_questions]
    gen = torch.Generator(device=next(teacher.parameters()).device).manual_seed(cfg.seed)
    with Stopwatch(log):
        # 1-2. the teacher writes k traces per question; the verifier judges them
        traces = teacher_traces(teacher, tok, probs, cfg.traces_per_question, gen, cfg.max_new_tokens)
        judge_traces(probs, traces)
        stats = trace_stats(probs, traces, tok)
        sets = distill_sets(probs, traces, tok, cfg.sizes, rng=cfg.seed)
        log.record_update(0, student="traces", examples=len(traces), final_loss=float("nan"),
                          cpu_s=time.process_time() - cpu0)
        hits = {"teacher": evaluate_hits(teacher, tok, task.held_out, cfg.eval_samples, cfg.seed + 1,
                                         cfg.max_new_tokens)}
        # 3. the student base: tiny-lm on the one-step facts only
        facts = sft_examples(tok, task.facts)
        base = load_model(STUDENT_BASE, device=next(teacher.parameters()).device)
        sft_train(base, facts, tok.eos_id,
                  SFTConfig(steps=cfg.facts_steps, batch_size=cfg.batch_size, lr=cfg.lr,
                            warmup_steps=max(1, cfg.facts_steps // 10), seed=cfg.seed))
        base.eval()
        hits["student base"] = evaluate_hits(base, tok, task.held_out, cfg.eval_samples,
                                             cfg.seed + 1, cfg.max_new_tokens)
        students = {}
        for name in progress_bar(list(sets), enabled=progress, desc="students"):
            # then each student: a copy of the base, SFT on facts + its set; held-out hits
            student, hist = train_student(base, facts, sets[name], tok.eos_id,
                                          cfg.student_steps, cfg.batch_size, cfg.lr, cfg.seed)
            students[name] = student
            hits[name] = evaluate_hits(student, tok, task.held_out, cfg.eval_samples,
                                       cfg.seed + 1, cfg.max_new_tokens)
            log.record_update(len(students), student=name, examples=len(sets[name]),
                              final_loss=hist["loss"][-1], cpu_s=time.process_time() - cpu0)
    return CoTDistillRun(cfg, log, traces, students, hits, stats)


# ----------------------------------------------------------------------------- the shipped artefact
def hits_to_json(hits: dict) -> dict:
    """``{"greedy": "0110…", "sampled": ["0101", …]}``: compact strings, one character per answer."""
    bits = lambda a: "".join("1" if x else "0" for x in np.asarray(a, dtype=bool))  # noqa: E731
    return {"greedy": bits(hits["greedy"]), "sampled": [bits(r) for r in hits["sampled"]]}


def hits_from_json(d: dict) -> dict:
    """The inverse of :func:`hits_to_json` (bool arrays)."""
    if not isinstance(d, dict) or not isinstance(d.get("greedy"), str) or not isinstance(d.get("sampled"), list):
        raise ValueError("expected {'greedy': '0101…', 'sampled': ['01…', …]} as written by hits_to_json")
    arr = lambda s: np.array([c == "1" for c in s], dtype=bool)  # noqa: E731
    return {"greedy": arr(d["greedy"]), "sampled": np.stack([arr(s) for s in d["sampled"]])}


def load_results(folder=None) -> dict:
    """The shipped ``results.json``, with every ``hits`` entry turned back into bool arrays."""
    from lib.llm.checkpoint import CHECKPOINT_DIR

    path = pathlib.Path(folder) if folder is not None else CHECKPOINT_DIR / ARTEFACT
    res = json.loads((path / "results.json").read_text(encoding="utf-8"))
    res["hits"] = {k: hits_from_json(v) for k, v in res["hits"].items()}
    return res


def make_artefact(out=None, cfg: CoTDistillConfig | None = None, command: str | None = None,
                  progress: bool = True) -> dict:
    """Run :func:`train_cot_distill` and write ``results.json``, ``meta.json`` and the filtered
    student (``student-filtered/``) into ``out`` (default ``data/checkpoints/cot-distill``)."""
    from lib.align.tasks import chain_arithmetic_task
    from lib.llm.checkpoint import CHECKPOINT_DIR, save_checkpoint
    from lib.provenance import git_commit, machine, tree_dirty

    cfg = cfg or CoTDistillConfig()
    task = chain_arithmetic_task()
    cpu0 = time.process_time()
    run = train_cot_distill(cfg, progress=progress, task=task)
    cpu_s = time.process_time() - cpu0
    out = pathlib.Path(out) if out is not None else CHECKPOINT_DIR / ARTEFACT
    out.mkdir(parents=True, exist_ok=True)
    h = run.hits
    tests = {"filtered vs unfiltered": compare(h["filtered"], h["unfiltered"]),
             "filtered vs answer-only": compare(h["filtered"], h["answer-only"]),
             "filtered vs teacher": compare(h["filtered"], h["teacher"]),
             "unfiltered vs teacher": compare(h["unfiltered"], h["teacher"])}
    accuracy = {k: {"greedy": float(v["greedy"].mean()), "sampled": float(v["sampled"].mean())}
                for k, v in h.items()}
    examples = {u["student"]: u["examples"] for u in run.log.updates}
    results = {"hits": {k: hits_to_json(v) for k, v in h.items()}, "accuracy": accuracy, "tests": tests,
               "trace_stats": run.stats, "examples": examples,
               "held_out_questions": [p.expression for p in task.held_out]}
    (out / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    common = {"command": command or "python -m lib.align.cot_distill", "commit": git_commit(),
              "tree_dirty": tree_dirty(), "machine": machine(), "seed": cfg.seed}
    save_checkpoint(run.students["filtered"], out / "student-filtered",
                    {**common, "name": f"{ARTEFACT}/student-filtered", "base": STUDENT_BASE, "teacher": TEACHER,
                     "description": "tiny-lm fine-tuned on the one-step facts, then on the facts plus the "
                                    "verifier-filtered traces of tiny-lm-arith-sft (CoT distillation)",
                     "metrics": accuracy["filtered"]})
    meta = {**common, "name": ARTEFACT, "teacher": TEACHER, "student_base": STUDENT_BASE,
            "train_config": dataclasses.asdict(cfg), "task": task.describe(), "cpu_s": cpu_s,
            "time_s": run.log.wall_time, "log": run.log.updates,
            "metrics": {"accuracy": accuracy, "tests": tests, "trace_stats": run.stats},
            "note": "accuracy on the 200 held-out questions: greedy (one answer) and sampled "
                    f"(temperature 1, {cfg.eval_samples} answers); per-question hits in results.json"}
    (out / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.align.cot_distill",
                                 description="Make data/checkpoints/cot-distill: teacher traces, verifier "
                                             "filtering, students, per-question held-out hits.")
    ap.add_argument("--out", default=None, help="folder (default data/checkpoints/cot-distill)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    cmd = "python -m lib.align.cot_distill " + " ".join(argv if argv is not None else sys.argv[1:])
    torch.set_num_threads(1)
    meta = make_artefact(args.out, CoTDistillConfig(seed=args.seed), command=cmd.strip(),
                         progress=not args.no_progress)
    for k, v in meta["metrics"]["accuracy"].items():
        print(f"{k:>15}: greedy {v['greedy']:.3f}  sampled {v['sampled']:.3f}")
    for k, v in meta["metrics"]["tests"].items():
        print(f"{k}: McNemar {v['a_only']}/{v['b_only']} p={v['p_greedy']:.2g}; "
              f"sampled gain {v['gain']:+.3f} p={v['p_sampled']:.2g}")
    print(f"{meta['cpu_s']:.0f} CPU-s")
    return 0


__all__ = ["TEACHER", "STUDENT_BASE", "ARTEFACT", "STUDENTS", "CoTDistillConfig", "Traces", "CoTDistillRun",
           "teacher_traces", "judge_traces", "filter_traces", "trace_stats", "distill_sets", "train_student",
           "evaluate_hits", "compare", "train_cot_distill", "hits_to_json", "hits_from_json", "load_results",
           "make_artefact"]


if __name__ == "__main__":
    sys.exit(main())
