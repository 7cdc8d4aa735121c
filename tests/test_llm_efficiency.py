"""The optimisation-map micro-demos: what must hold on any machine (timings are not tested)."""
import pytest
import torch

from helpers import small_lm
from lib.llm import efficiency as ef


def _prompts(n=4, T=6, vocab=97):
    return torch.randint(0, vocab, (n, T), generator=torch.Generator().manual_seed(0))


def test_best_of_returns_the_minimum_and_validates():
    calls = []
    sec = ef.best_of(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and 0 <= sec < 1
    for bad in (0, True, 1.5):
        with pytest.raises(ValueError, match="repeats"):
            ef.best_of(lambda: None, repeats=bad)
    with pytest.raises(ValueError, match="warmup"):
        ef.best_of(lambda: None, warmup=-1)


def test_decode_throughput_and_kv_cache():
    model = small_lm()
    tps = ef.decode_throughput(model, _prompts(), 5, [1, 4], repeats=1)
    assert set(tps) == {1, 4} and all(v > 0 for v in tps.values())
    with pytest.raises(ValueError, match="batch sizes"):
        ef.decode_throughput(model, _prompts(), 5, [5])
    with pytest.raises(ValueError, match="prompt ids"):
        ef.decode_throughput(model, torch.zeros(2, 3), 5, [1])
    res = ef.cache_vs_recompute(model, _prompts(), 8, repeats=1)
    assert res["same_tokens"] and res["cache_s"] > 0 and res["recompute_s"] > 0


def test_autocast_moves_the_loss_by_bf16_rounding_only():
    model = small_lm()
    x = _prompts(4, 16)
    y = torch.roll(x, -1, 1)
    res = ef.autocast_step(model, x, y, repeats=1)
    assert 0 < abs(res["bf16_loss"] - res["fp32_loss"]) <= 0.02 * res["fp32_loss"]
    assert 0 < res["grad_rel_diff"] < 0.1 and res["logits_max_diff"] > 0
    assert all(p.grad is None for p in model.parameters())  # leaves no gradients behind
    with pytest.raises(ValueError, match="shape"):
        ef.autocast_step(model, x, y[:, :3])


def test_compile_block_times_and_compares(monkeypatch):
    # the real TorchInductor run is the notebook's (it takes seconds); here the eager backend
    # exercises the same bookkeeping
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda m: real(m, backend="eager"))
    model = small_lm()
    x = torch.randn(2, 8, model.config.d_model)
    args = (x, model.rope_cos[:8], model.rope_sin[:8])
    res = ef.compile_block(model.layers[0], args, repeats=2)
    assert res["max_diff"] <= 1e-6 and res["compile_s"] > 0
    assert res["eager_s"] > 0 and res["compiled_s"] > 0
    with pytest.raises(TypeError, match="nn.Module"):
        ef.compile_block(lambda t: t, (x,))
    with pytest.raises(ValueError, match="tuple"):
        ef.compile_block(model.layers[0], [x])
