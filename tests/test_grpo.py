"""GRPO: group advantages (variants, zero mean), per-token loss (clip, KL, aggregation), sampling helpers,
and a tiny randomly initialised LM that GRPO teaches to emit a rewarded token."""
import numpy as np
import pytest
import torch

from lib.align.grpo import GRPOConfig, GRPORun, group_advantages, grpo_loss, grpo_train
from lib.llm.generate import completion_mask, greedy_accuracy, left_pad, sample_groups, token_logprobs
from lib.objectives import clipped_surrogate, kl_k3


def test_group_advantages_variants_zero_mean_and_formulas():
    rng = np.random.default_rng(0)
    r = rng.integers(0, 2, size=(5, 8)).astype(float)
    r[0] = 1.0                                                  # a group with no signal
    for v in ("std", "mean", "batch_std"):
        a = group_advantages(r, v)
        assert a.shape == r.shape and np.allclose(a.mean(1), 0, atol=1e-12)
        assert np.all(a[0] == 0)
    np.testing.assert_allclose(group_advantages(r, "mean"), r - r.mean(1, keepdims=True))
    std = r.std(1, ddof=1, keepdims=True)
    np.testing.assert_allclose(group_advantages(r, "std"), (r - r.mean(1, keepdims=True)) / (std + 1e-4))
    np.testing.assert_allclose(group_advantages(r, "batch_std"), (r - r.mean(1, keepdims=True)) / (r.std(ddof=1) + 1e-4))
    t = group_advantages(torch.tensor(r, dtype=torch.float32), "std")   # same formula as TRL's GRPOTrainer
    tr = torch.tensor(r, dtype=torch.float32)
    assert torch.allclose(t, (tr - tr.mean(1, keepdim=True)) / (tr.std(1, keepdim=True) + 1e-4), atol=1e-6)


def test_group_advantages_validation():
    with pytest.raises(ValueError, match="variant"):
        group_advantages(np.zeros((2, 3)), "max")
    with pytest.raises(ValueError, match="group_size >= 2"):
        group_advantages(np.zeros((2, 1)))
    with pytest.raises(ValueError, match="group_size >= 2"):
        group_advantages(np.zeros(4))
    with pytest.raises(ValueError, match="finite"):
        group_advantages(np.array([[1.0, np.nan]]))


def test_grpo_loss_matches_ppo_clip_and_kl():
    g = torch.Generator().manual_seed(0)
    B, T = 4, 6
    old = -torch.rand(B, T, generator=g)
    new = old + 0.3 * torch.randn(B, T, generator=g)
    ref = old + 0.1 * torch.randn(B, T, generator=g)
    adv = torch.randn(B, generator=g)
    mask = torch.ones(B, T)
    loss, info = grpo_loss(new, old, None, adv, mask, 0.2, beta=0.0, aggregation="token")
    ref_loss, ref_info = clipped_surrogate(new, old, adv[:, None].expand(B, T), 0.2)
    assert torch.isclose(loss, ref_loss) and np.isclose(info["clip_fraction"], ref_info["clip_fraction"])
    # KL term: k3 estimator, non-negative, zero iff equal
    assert torch.all(kl_k3(new, ref) >= 0) and torch.all(kl_k3(new, new) == 0)
    l_kl, info_kl = grpo_loss(new, old, ref, adv, mask, 0.2, beta=0.5, aggregation="token")
    assert torch.isclose(l_kl - loss, 0.5 * kl_k3(new, ref).mean())
    assert np.isclose(info_kl["kl"], float(kl_k3(new, ref).mean()))
    # aggregation: sequence-mean weights every completion equally, token-mean every token
    mask2 = torch.zeros(B, T)
    mask2[0, :1] = 1
    mask2[1:, :] = 1
    ls, _ = grpo_loss(new, old, None, adv, mask2, 0.2, 0.0, "sequence")
    lt, _ = grpo_loss(new, old, None, adv, mask2, 0.2, 0.0, "token")
    r = torch.exp(new - old)
    per = torch.minimum(r * adv[:, None], r.clamp(0.8, 1.2) * adv[:, None])
    assert torch.isclose(ls, -((per * mask2).sum(1) / mask2.sum(1)).mean())
    assert torch.isclose(lt, -(per * mask2).sum() / mask2.sum())
    with pytest.raises(ValueError, match="aggregation"):
        grpo_loss(new, old, None, adv, mask, aggregation="group")
    with pytest.raises(ValueError, match="advantages"):
        grpo_loss(new, old, None, adv[:2], mask)
    with pytest.raises(ValueError, match="share one"):
        grpo_loss(new, old[:, :3], None, adv, mask)


def test_padding_and_completion_mask():
    ids, m = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and m.tolist() == [[1, 1, 1], [0, 0, 1]]
    cm = completion_mask(torch.tensor([[3, 9, 4, 9], [9, 9, 9, 9], [1, 2, 3, 4]]), eos_id=9)
    assert cm.tolist() == [[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]]
    with pytest.raises(ValueError):
        left_pad([], 0)


def _tiny_lm(seed=0):
    from lib.llm.config import LMConfig
    from lib.llm.model import TinyLM

    torch.manual_seed(seed)
    return TinyLM(LMConfig(vocab_size=12, d_model=32, n_layers=1, n_heads=2, n_kv_heads=2, d_ff=64, max_seq_len=32))


def test_token_logprobs_match_manual_gather():
    model = _tiny_lm()
    ids, attn = left_pad([[1, 2, 3, 4, 5], [2, 3, 4, 5, 6]], 0)
    lp = token_logprobs(model, ids, attn, n_prompt=3)
    full = torch.log_softmax(model(ids, attention_mask=attn).logits, -1)
    assert lp.shape == (2, 2)
    assert torch.allclose(lp[0, 1], full[0, 3, 5]) and torch.allclose(lp[1, 0], full[1, 2, 5])


def test_grpo_teaches_a_tiny_lm_to_emit_the_rewarded_token():
    """Reward 1 when the first completion token is 7: GRPO raises the (held-out prompt) greedy success rate."""
    torch.set_num_threads(1)
    model = _tiny_lm(1)
    EOS = 11
    rng = np.random.default_rng(0)
    prompts = [list(rng.integers(0, 10, size=3)) for _ in range(40)]
    held = [list(rng.integers(0, 10, size=3)) for _ in range(20)]
    ok = lambda i, comp: comp[0] == 7
    before = greedy_accuracy(model, held, ok, EOS, max_new_tokens=2)
    run = grpo_train(model, prompts, lambda i, c: float(c[0] == 7), EOS,
                     GRPOConfig(steps=25, prompts_per_step=4, group_size=8, max_new_tokens=2, lr=3e-2, beta=0.01))
    assert isinstance(run, GRPORun) and run.model is model and len(run.log.updates) == 25
    after = greedy_accuracy(model, held, ok, EOS, max_new_tokens=2)
    assert after > before and after >= 0.9
    reward = run.log.series("reward")
    assert np.mean(reward[-5:]) > np.mean(reward[:5])
    assert all(k >= 0 for k in run.log.series("kl"))
    ids, attn, cm, n = sample_groups(model, prompts[:2], 3, 2, EOS, generator=torch.Generator().manual_seed(0))
    assert ids.shape == (6, n + 2) and cm.shape == (6, 2)
    with pytest.raises(ValueError, match="group_size"):
        sample_groups(model, prompts[:2], 1, 2, EOS)
    with pytest.raises(ValueError, match="prompts_per_step"):
        grpo_train(model, prompts[:2], lambda i, c: 0.0, EOS, GRPOConfig(prompts_per_step=4))
    with pytest.raises(ValueError, match="variant"):
        GRPOConfig(variant="median")


@pytest.mark.parametrize("kwargs, match", [
    ({"variant": "median"}, "GRPOConfig.variant"),
    ({"aggregation": "batch"}, "GRPOConfig.aggregation"),
    ({"group_size": 1}, "GRPOConfig.group_size"),
    ({"steps": 0}, "GRPOConfig.steps"),
    ({"clip_eps": 0.0}, "GRPOConfig.clip_eps"),
    ({"beta": -0.1}, "GRPOConfig.beta"),
    ({"lr": 0.0}, "GRPOConfig.lr"),
    ({"temperature": 0.0}, "GRPOConfig.temperature"),
])
def test_grpo_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GRPOConfig(**kwargs)
