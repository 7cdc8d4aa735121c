"""The Part 2 model exercise checkers accept the lib implementation and reject wrong ones."""
import math

import torch

from lib.exercises import llm as ex


def _raises(*a, **k):
    raise RuntimeError("boom")


def test_rmsnorm_checker():
    assert ex.check_rmsnorm(ex.rmsnorm_reference, trials=10)
    ok = lambda x, weight, eps: x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * weight  # noqa: E731
    assert ex.check_rmsnorm(ok, trials=10)
    wrong = lambda x, weight, eps: x / torch.sqrt((x * x).mean(-1, keepdim=True)) * weight  # noqa: E731  no eps
    assert not ex.check_rmsnorm(wrong, trials=25, )
    layer = lambda x, weight, eps: torch.nn.functional.layer_norm(x, x.shape[-1:], weight, eps=eps)  # noqa: E731
    assert not ex.check_rmsnorm(layer, trials=10)
    assert not ex.check_rmsnorm(_raises)


def test_rope_checker():
    assert ex.check_rope(ex.rope_reference, trials=10)

    def interleaved(x, positions, theta):  # the other (GPT-J) pairing: wrong for this book's convention
        hd = x.shape[-1]
        f = theta ** (-torch.arange(0, hd, 2).float() / hd)
        ang = positions.float()[:, None] * f
        x1, x2 = x[:, 0::2], x[:, 1::2]
        out = torch.empty_like(x)
        out[:, 0::2] = x1 * ang.cos() - x2 * ang.sin()
        out[:, 1::2] = x1 * ang.sin() + x2 * ang.cos()
        return out
    assert not ex.check_rope(interleaved)
    assert not ex.check_rope(lambda x, positions, theta: x)
    assert not ex.check_rope(_raises)


def test_attention_checker():
    def manual(x, wq, wk, wv):
        q, k, v = x @ wq, x @ wk, x @ wv
        s = q @ k.T / math.sqrt(q.shape[-1])
        s = s.masked_fill(torch.triu(torch.ones_like(s, dtype=torch.bool), 1), float("-inf"))
        return s.softmax(-1) @ v
    assert ex.check_attention_head(manual, trials=10)

    def not_causal(x, wq, wk, wv):
        q, k, v = x @ wq, x @ wk, x @ wv
        return (q @ k.T / math.sqrt(q.shape[-1])).softmax(-1) @ v
    assert not ex.check_attention_head(not_causal)
    assert not ex.check_attention_head(_raises)


def test_top_k_and_kv_checkers():
    assert ex.check_top_k_filter(ex.top_k_reference, trials=10)
    assert not ex.check_top_k_filter(lambda logits, k: logits)
    assert ex.check_kv_cache_step(ex.kv_cache_step_reference, trials=10)

    def no_scale(k_cache, v_cache, q, k_new, v_new):
        K, V = torch.cat([k_cache, k_new]), torch.cat([v_cache, v_new])
        return (q @ K.T).softmax(-1) @ V, K, V
    assert not ex.check_kv_cache_step(no_scale)
    assert not ex.check_kv_cache_step(_raises)


def test_lr_schedule_checker():
    assert ex.check_lr_schedule(ex.lr_schedule_reference, trials=20)

    def no_floor(step, max_lr, warmup_steps, total_steps, min_lr_ratio):  # forgets the minimum LR
        if step < warmup_steps:
            return max_lr * (step + 1) / warmup_steps
        prog = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return max_lr * 0.5 * (1 + math.cos(math.pi * prog))
    assert not ex.check_lr_schedule(no_floor)
    assert not ex.check_lr_schedule(_raises)
