"""The shipped PEFT comparison (data/checkpoints/peft-comparison): reload it, check its recorded
numbers against what can be recomputed quickly, and test run_method on a tiny budget."""
import pytest
import torch

from lib.peft.compare import load_results, run_method, summarize
from lib.peft.methods import METHODS, make_method, memory_after_step, trainable_formula


@pytest.fixture(scope="module")
def shipped():
    return load_results()


def test_shipped_table_is_complete_and_consistent(shipped):
    from lib.llm.config import LMConfig

    results, meta = shipped
    rows = results["rows"]
    assert set(meta["methods"]) == set(METHODS) and len(meta["seeds"]) == 3
    for key in ("command", "commit", "machine", "steps", "learning_rates", "total_time_s"):
        assert key in meta
    from lib.llm.checkpoint import load_meta

    cfg = LMConfig.from_dict(load_meta("tiny-lm")["config"])
    for r in rows:
        if r["method"] == "base":
            continue
        assert r["base_untouched"] and r["trainable"] == r["formula"]
        assert r["formula"] == trainable_formula(r["method"], cfg)
    assert summarize(rows) == results["summary"]
    base = results["summary"]["base"]["held_out_mean"]
    for m in METHODS:
        s = results["summary"][m]
        assert s["held_out_mean"] - base > s["held_out_max"] - s["held_out_min"], m


def test_shipped_base_accuracy_and_memory_reproduce(shipped):
    from lib.align.sft import sft_batch, sft_loss
    from lib.llm.checkpoint import load_model
    from lib.llm.tokenizer import load_tokenizer
    from lib.sft import finetune_task as ft

    results, _ = shipped
    tok, base = load_tokenizer(), load_model("tiny-lm")
    task = ft.fact_chat_task()
    assert ft.accuracy(base, tok, task) == pytest.approx(results["summary"]["base"]["held_out_mean"])
    ids, targets, _ = sft_batch(ft.examples(tok, task)[:16], tok.pad_id)
    for m in ("lora", "qlora", "prefix"):
        row = next(r for r in results["rows"] if r["method"] == m)
        mem = memory_after_step(make_method(m, base), lambda mm: sft_loss(mm, ids, targets))
        assert mem == row["memory"], m


def test_run_method_small_budget():
    from lib.llm.checkpoint import load_model
    from lib.llm.tokenizer import load_tokenizer
    from lib.sft import finetune_task as ft

    tok, base = load_tokenizer(), load_model("tiny-lm")
    task = ft.fact_chat_task()
    r = run_method("lora", base, tok, task, seed=0, steps=3, batch_size=4, return_model=True)
    assert r["trainable"] == r["formula"] and r["base_untouched"] and len(r["history"]["loss"]) == 3
    assert set(r["memory"]) == {"weights", "grads", "optimizer", "total"}
    with pytest.raises(ValueError):
        run_method("bitfit", base, tok, task)
    assert torch.is_tensor(base.embed_tokens.weight)
