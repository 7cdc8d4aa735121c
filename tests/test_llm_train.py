"""Tests of lib.llm.train, lib.llm.checkpoint and lib.llm.export."""
import json
import math

import pytest
import torch

from lib.llm.checkpoint import load_model, save_checkpoint
from lib.llm.config import LMConfig
from lib.llm.export import export_hf
from lib.llm.generate import greedy
from lib.llm.model import TinyLM
from lib.llm.train import TrainConfig, eval_windows, evaluate_loss, lr_at, random_batch, train_lm



def small(**kw):
    torch.manual_seed(0)
    cfg = dict(vocab_size=50, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=64)
    return TinyLM(LMConfig(**{**cfg, **kw}))


def test_lr_schedule():
    kw = dict(max_lr=1.0, warmup_steps=10, total_steps=110, min_lr_ratio=0.1)
    lrs = [lr_at(s, **kw) for s in range(120)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(lrs[:9], lrs[1:10]))            # warmup increases
    assert all(a >= b for a, b in zip(lrs[9:110], lrs[10:111]))       # cosine decreases
    assert lrs[60] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[110] == pytest.approx(0.1) and lrs[119] == pytest.approx(0.1)
    with pytest.raises(ValueError):
        lr_at(0, max_lr=1, warmup_steps=20, total_steps=10)
    with pytest.raises(ValueError):
        lr_at(0, max_lr=1, warmup_steps=0, total_steps=10, min_lr_ratio=2)


def test_batches_and_windows():
    toks = torch.arange(100)
    x, y = random_batch(toks, 4, 10, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 10) and torch.equal(y, x + 1)
    w = eval_windows(toks, 10)
    assert w.shape == (9, 11) and torch.equal(w[1, 0], torch.tensor(10))
    with pytest.raises(ValueError):
        eval_windows(torch.arange(5), 10)
    with pytest.raises(ValueError):
        random_batch(torch.zeros(3, 3, dtype=torch.long), 2, 2, torch.Generator())


def test_train_learns_a_pattern_and_is_deterministic():
    pattern = torch.tensor([1, 2, 3, 4, 5, 6, 7]).repeat(300)
    tc = TrainConfig(steps=40, batch_size=8, seq_len=16, lr=1e-2, warmup_steps=4, eval_every=20, eval_windows=8,
                     progress=False)
    m = small()
    before = evaluate_loss(m, pattern[:400], 16)
    h = train_lm(m, pattern, pattern[:400], tc)
    assert h["val_loss"][-1] < 0.3 * before and len(h["loss"]) == 40 and h["eval_step"] == [20, 40]
    assert h["lr"][0] < h["lr"][3] and h["tokens_per_s"] > 0
    m2 = small()
    h2 = train_lm(m2, pattern, pattern[:400], tc)
    assert h2["loss"] == h["loss"]
    moe = small(n_experts=3, top_k=1)
    hm = train_lm(moe, pattern, None, TrainConfig(steps=5, batch_size=4, seq_len=16, warmup_steps=1, progress=False))
    assert all(a is not None for a in hm["aux_loss"])
    with pytest.raises(ValueError):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="seq_len"):
        train_lm(m, pattern, None, TrainConfig(steps=2, seq_len=128, warmup_steps=1, progress=False))


@pytest.mark.parametrize("kw", [{}, {"tie_embeddings": False}, {"n_experts": 3, "top_k": 2}])
def test_checkpoint_roundtrip(tmp_path, kw):
    m = small(**kw).eval()
    save_checkpoint(m, tmp_path / "ck", {"seed": 0, "metrics": {"x": 1.0}})
    back, meta = load_model(tmp_path / "ck", with_meta=True)
    ids = torch.randint(0, 50, (2, 9))
    torch.testing.assert_close(back(ids).logits, m(ids).logits, atol=0, rtol=0)
    assert meta["config"] == m.config.to_dict() and meta["metrics"]["x"] == 1.0
    if m.config.tie_embeddings:
        assert back.lm_head.weight is back.embed_tokens.weight
    raw = (tmp_path / "ck" / "model.safetensors").read_bytes()
    assert raw[8:9] == b"{"  # a safetensors header, not a pickle
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nothing")


@pytest.mark.parametrize("kw", [{}, {"tie_embeddings": False}, {"n_experts": 4, "top_k": 2}])
def test_export_loads_offline_in_transformers_and_generates_same_tokens(tmp_path, kw):
    from transformers import AutoModelForCausalLM
    m = small(**kw).eval()
    export_hf(m, tmp_path / "hf")
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert cfg["model_type"] == ("mixtral" if kw.get("n_experts") else "llama")
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf", local_files_only=True).eval()
    ids = torch.randint(0, 50, (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, m(ids).logits, atol=1e-5, rtol=0)
    ref = hf.generate(ids[:1], attention_mask=torch.ones(1, 12, dtype=torch.long), max_new_tokens=15,
                      do_sample=False, pad_token_id=0)
    assert torch.equal(greedy(m, ids[:1], 15), ref)


def test_export_with_tokenizer(tmp_path):
    from lib import DATA_DIR
    tdir = DATA_DIR / "tokenizer"
    if not (tdir / "tokenizer.json").is_file():
        pytest.skip("the book's tokenizer export (data/tokenizer/tokenizer.json) is not there")
    from transformers import PreTrainedTokenizerFast
    m = small(vocab_size=1024).eval()
    export_hf(m, tmp_path / "hf", tokenizer_dir=tdir)
    tok = PreTrainedTokenizerFast.from_pretrained(tmp_path / "hf")
    assert len(tok.encode("Q: What is 2 + 3?")) > 0
    with pytest.raises(FileNotFoundError):
        export_hf(m, tmp_path / "x", tokenizer_dir=tmp_path)
