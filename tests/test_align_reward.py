"""lib.align.reward: the reward model's structure, last-token reading under both paddings, the
Bradley–Terry loss and its gradient, training, metrics, normalisation, the per-token RLHF reward,
save/load, and the shipped checkpoint."""
import copy
import dataclasses
import math

import numpy as np
import pytest
import torch
from helpers import small_lm

from lib.align import reward as R
from lib.objectives import bradley_terry_loss

PAD, EOS = 96, 95


def _pairs(n=6, seed=0):
    g = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        p = list(g.integers(3, 90, size=int(g.integers(2, 6))))
        c = list(g.integers(3, 90, size=int(g.integers(1, 5)))) + [EOS]
        r = list(g.integers(3, 90, size=int(g.integers(1, 7)))) + [EOS]
        out.append((p, c, r))
    return out


# ----------------------------------------------------------------------------- structure
def test_from_lm_copies_the_backbone_and_counts_parameters():
    lm = small_lm()
    rm = R.RewardModel.from_lm(lm, seed=3)
    for (n1, p1), (n2, p2) in zip(lm.named_parameters(), rm.lm.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2) and p1.data_ptr() != p2.data_ptr()
    c = R.parameter_counts(rm)
    assert c["head"] == lm.config.d_model and rm.head.bias is None
    assert c["backbone"] == lm.num_parameters()          # tied LM head: the embedding is the backbone's
    assert c["total"] == sum(p.numel() for p in rm.parameters()) and c["lm_head_unused"] == 0
    untied = R.parameter_counts(R.RewardModel.from_lm(small_lm(tie_embeddings=False)))
    assert untied["lm_head_unused"] == 97 * 32
    assert untied["backbone"] == small_lm(tie_embeddings=False).num_parameters() - 97 * 32
    same = R.RewardModel.from_lm(lm, seed=3)
    assert torch.equal(same.head.weight, rm.head.weight)
    assert not torch.equal(R.RewardModel.from_lm(lm, seed=4).head.weight, rm.head.weight)
    with pytest.raises(TypeError, match="TinyLM"):
        R.RewardModel(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="RewardModel"):
        R.parameter_counts(lm)


def test_last_token_index_and_its_errors():
    m = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 1, 0, 0, 0]])
    assert R.last_token_index(m).tolist() == [2, 4, 4, 1]
    with pytest.raises(ValueError, match="at least one real token"):
        R.last_token_index(torch.tensor([[0, 0]]))
    with pytest.raises(ValueError, match="only 0 and 1"):
        R.last_token_index(torch.tensor([[2, 1]]))
    with pytest.raises(ValueError, match="batch, seq_len"):
        R.last_token_index(torch.tensor([1, 1]))


def test_score_is_the_last_real_token_under_left_and_right_padding():
    rm = R.RewardModel.from_lm(small_lm(), seed=1, head_std=1.0).eval()
    seqs = [p + c for p, c, _ in _pairs(5)]
    alone = torch.stack([rm(torch.tensor([s]))[0] for s in seqs])
    with torch.no_grad():
        for padding in R.PADDINGS:
            ids, attn = R.pad_sequences(seqs, PAD, padding)
            got = rm(ids, attn)
            torch.testing.assert_close(got, alone, atol=1e-5, rtol=0)
            tok = rm.token_scores(ids, attn)
            assert tok.shape == ids.shape
            torch.testing.assert_close(got, tok[torch.arange(len(seqs)), R.last_token_index(attn)])
        # reading the last *position* under right padding reads a pad: a different number
        ids, attn = R.pad_sequences(seqs, PAD, "right")
        wrong = rm.token_scores(ids, attn)[:, -1]
        short = attn.sum(1) < attn.shape[1]
        assert (wrong[short] - alone[short]).abs().min() > 1e-4
    with pytest.raises(ValueError, match="padding"):
        R.pad_sequences(seqs, PAD, "middle")


def test_pair_sequences_put_chosen_first():
    pairs = _pairs(3)
    ids, attn = R.pair_sequences(pairs, PAD)
    assert ids.shape[0] == 6
    for i, (p, c, r) in enumerate(pairs):
        assert ids[i, :len(p) + len(c)].tolist() == p + c and int(attn[i].sum()) == len(p) + len(c)
        assert ids[3 + i, :len(p) + len(r)].tolist() == p + r


# ----------------------------------------------------------------------------- the loss
def test_bradley_terry_closed_form_and_gradient():
    g = torch.Generator().manual_seed(0)
    sw = (torch.randn(7, generator=g, dtype=torch.float64) * 3).requires_grad_()
    sl = (torch.randn(7, generator=g, dtype=torch.float64) * 3).requires_grad_()
    loss = bradley_terry_loss(sw, sl)
    d = (sw - sl).detach()
    closed = torch.log1p(torch.exp(-d)).mean()
    assert abs(float(loss.detach()) - float(closed)) < 1e-12
    loss.backward()
    torch.testing.assert_close(sw.grad, (torch.sigmoid(d) - 1) / 7)
    torch.testing.assert_close(sl.grad, -(torch.sigmoid(d) - 1) / 7)
    assert abs(float(bradley_terry_loss(torch.zeros(3), torch.zeros(3))) - math.log(2)) < 1e-7
    big = torch.tensor([200.0]), torch.tensor([-200.0])
    assert float(bradley_terry_loss(*big)) == 0.0 and float(bradley_terry_loss(*big[::-1])) == 400.0
    with pytest.raises(ValueError, match="one shape"):
        bradley_terry_loss(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="1-D"):
        bradley_terry_loss(torch.zeros(2, 2), torch.zeros(2, 2))


def test_dpo_keeps_its_bradley_terry_name():
    from lib.align import dpo

    assert dpo.bradley_terry_loss is bradley_terry_loss


# ----------------------------------------------------------------------------- metrics
def test_pair_metrics_accuracy_auc_and_reliability():
    s = torch.tensor([[2.0, 1.0], [0.0, 1.0], [3.0, 3.0], [5.0, -1.0]])
    m = R.pair_metrics(s)
    assert m["accuracy"] == (1 + 0 + 0.5 + 1) / 4
    from sklearn.metrics import roc_auc_score

    assert m["auc"] == roc_auc_score([1] * 4 + [0] * 4, [2, 0, 3, 5, 1, 1, 3, -1])
    assert abs(m["margin"] - 1.5) < 1e-12
    rel = R.reliability([0.1, 0.15, 0.9, 0.95], [0, 0, 1, 1], n_bins=2)
    assert rel["count"] == [2, 2] and rel["observed"] == [0.0, 1.0]
    assert abs(rel["ece"] - 0.1) < 1e-12
    with pytest.raises(ValueError, match="chosen, rejected"):
        R.pair_metrics(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="0/1"):
        R.reliability([0.5], [2])


# ----------------------------------------------------------------------------- training
def test_training_learns_a_learnable_preference():
    """Chosen completions end with token 5, rejected ones with token 6: a reward model learns it."""
    g = np.random.default_rng(1)
    pairs = []
    for _ in range(48):
        p = list(g.integers(10, 90, size=3))
        body = list(g.integers(10, 90, size=2))
        pairs.append((p, body + [5, EOS], body + [6, EOS]))
    cfg = R.RewardConfig(steps=40, batch_size=16, lr=3e-3, head_lr=1e-2, warmup_steps=2, eval_every=20)
    run = R.train_reward_model(cfg, pairs[:32], PAD, small_lm(), eval_pairs=pairs[32:])
    assert run.evals[0]["step"] == 0 and run.evals[-1]["step"] == 40
    assert run.evals[-1]["accuracy"] == 1.0 and run.evals[-1]["auc"] > 0.9
    assert run.log.updates[0]["loss"] > run.log.series("loss")[-5:].mean()
    assert isinstance(run.model, R.RewardModel) and not run.model.training
    again = R.train_reward_model(cfg, pairs[:32], PAD, small_lm(), eval_pairs=pairs[32:])
    assert np.array_equal(run.log.series("loss"), again.log.series("loss"))     # seeded
    # continuing from a RewardModel leaves it untouched
    before = copy.deepcopy(run.model.state_dict())
    R.train_reward_model(dataclasses.replace(cfg, steps=2, warmup_steps=1), pairs, PAD, run.model)
    assert all(torch.equal(v, run.model.state_dict()[k]) for k, v in before.items())


def test_config_validation():
    with pytest.raises(ValueError, match="RewardConfig.lr"):
        R.RewardConfig(lr=0)
    with pytest.raises(ValueError, match="warmup_steps"):
        R.RewardConfig(steps=5, warmup_steps=6)
    with pytest.raises(ValueError, match="center_weight"):
        R.RewardConfig(center_weight=-1)
    with pytest.raises(TypeError, match="RewardConfig"):
        R.train_reward_model({"steps": 1}, _pairs(2), PAD, small_lm())


def test_center_weight_adds_the_centering_term():
    rm = R.RewardModel.from_lm(small_lm(), head_std=1.0)
    pairs = _pairs(4)
    plain, st = R.batch_loss(rm, pairs, PAD)
    cent, _ = R.batch_loss(rm, pairs, PAD, center_weight=0.5)
    s = R.pair_scores(rm, pairs, PAD)
    assert abs(float(cent.detach()) - float(plain.detach()) - 0.5 * float(((s[:, 0] + s[:, 1]) ** 2).mean())) < 1e-5


# ----------------------------------------------------------------------------- normalisation
def test_normalization():
    rm = R.RewardModel.from_lm(small_lm(), head_std=1.0)
    x = torch.tensor([1.0, 2.0, 4.0, 9.0])
    assert torch.equal(rm.normalize(x), x)                         # identity until set
    st = rm.set_normalization(x)
    z = rm.normalize(x)
    assert abs(float(z.mean())) < 1e-6 and abs(float(z.std()) - 1) < 1e-6
    assert st["mean"] == 4.0
    with pytest.raises(ValueError, match="all equal"):
        rm.set_normalization([1.0, 1.0])
    with pytest.raises(ValueError, match="two finite"):
        rm.set_normalization([1.0])


# ----------------------------------------------------------------------------- the LM as an agent
def test_kl_penalized_rewards():
    score = torch.tensor([1.0, -2.0])
    logp = torch.tensor([[-1.0, -2.0, -0.5], [-0.1, -0.2, -3.0]])
    ref = torch.tensor([[-1.5, -1.0, -0.5], [-0.3, -0.2, -1.0]])
    cm = torch.tensor([[1, 1, 1], [1, 1, 0]])
    r = R.kl_penalized_rewards(score, logp, ref, cm, 0.1)
    expect = torch.tensor([[-0.05, 0.1, 1.0], [-0.02, -2.0, 0.0]])
    torch.testing.assert_close(r, expect)
    with pytest.raises(ValueError, match="kl_coef"):
        R.kl_penalized_rewards(score, logp, ref, cm, -1.0)
    with pytest.raises(ValueError, match="one"):
        R.kl_penalized_rewards(score, logp, ref[:, :2], cm, 0.1)
    with pytest.raises(ValueError, match="at least one completion token"):
        R.kl_penalized_rewards(score, logp, ref, torch.zeros_like(cm), 0.1)


def test_lm_episode_sums_token_logprobs():
    lm = small_lm()
    ref = small_lm()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.05)
    rm = R.RewardModel.from_lm(lm, head_std=1.0).eval()
    ep = R.lm_episode(lm, ref, rm, [3, 4, 5], EOS, max_new_tokens=8, kl_coef=0.1,
                      generator=torch.Generator().manual_seed(0))
    n = len(ep["actions"])
    assert 1 <= n <= 8 and len(ep["states"]) == n and ep["states"][0] == [3, 4, 5]
    assert all(ep["states"][t] + [ep["actions"][t]] == (ep["states"][t + 1] if t + 1 < n else
                                                         [3, 4, 5] + ep["actions"]) for t in range(n))
    assert abs(ep["seq_logp"] - float(ep["logp"].sum())) < 1e-5
    kl = ep["logp"] - ep["ref_logp"]
    torch.testing.assert_close(ep["rewards"][:-1], -0.1 * kl[:-1])
    assert abs(float(ep["rewards"][-1]) - (ep["score"] - 0.1 * float(kl[-1]))) < 1e-5
    assert abs(ep["return"] - (ep["score"] - 0.1 * float(kl.sum()))) < 1e-5


def test_sampled_attention_mask_reads_the_eos():
    from lib.llm.generate import sample_groups

    lm = small_lm()
    rm = R.RewardModel.from_lm(lm, head_std=1.0).eval()
    prompts = [[3, 4, 5], [6, 7]]
    ids, attn, cm, n = sample_groups(lm, prompts, 2, 6, EOS, generator=torch.Generator().manual_seed(1),
                                     pad_id=PAD)
    m = R.sampled_attention_mask(attn, cm, n)
    with torch.no_grad():
        got = rm(ids, m)
        for i in range(ids.shape[0]):
            real = ids[i][m[i].bool()]
            assert torch.allclose(got[i], rm(real[None])[0], atol=1e-5)
    with pytest.raises(ValueError, match="n_prompt"):
        R.sampled_attention_mask(attn, cm, n + 1)


# ----------------------------------------------------------------------------- save and load
def test_save_and_load_roundtrip(tmp_path):
    rm = R.RewardModel.from_lm(small_lm(), seed=2, head_std=1.0)
    rm.set_normalization([0.0, 1.0, 5.0])
    R.save_reward_model(rm, tmp_path / "rm", {"seed": 2})
    back, meta = R.load_reward_model(tmp_path / "rm", with_meta=True)
    ids, attn = R.pair_sequences(_pairs(3), PAD)
    with torch.no_grad():
        assert torch.equal(back(ids, attn), rm.eval()(ids, attn))
    assert float(back.reward_mean) == float(rm.reward_mean) and meta["normalization"]["mean"] == 2.0
    assert back.lm.lm_head.weight is back.lm.embed_tokens.weight
    (tmp_path / "rm" / "model.safetensors").write_bytes(b"x" * 10)
    with pytest.raises(ValueError, match="SHA-256"):
        R.load_reward_model(tmp_path / "rm")
    with pytest.raises(ValueError, match="bias-free"):
        R.save_reward_model(R.RewardModel(small_lm(), bias=True), tmp_path / "b")


def test_a_language_model_checkpoint_is_not_a_reward_model():
    with pytest.raises(ValueError, match="no reward model"):
        R.load_reward_model("tiny-lm-arith-sft")


# ----------------------------------------------------------------------------- the shipped model
def test_shipped_reward_model_reproduces_its_metrics():
    from lib.align.preference import load_pairs
    from lib.llm.tokenizer import load_tokenizer

    tok = load_tokenizer()
    rm, meta = R.load_reward_model(with_meta=True)
    _, ev, _ = load_pairs()
    assert meta["command"].startswith("python -m lib.align.reward")
    sub = ev[:48]                                   # a subset, then the recorded whole
    s = R.pair_scores(rm, sub, tok.pad_id)
    assert s.shape == (48, 2)
    m = R.pair_metrics(R.pair_scores(rm, ev, tok.pad_id), seed=meta["seed"])
    assert abs(m["accuracy"] - meta["metrics"]["eval_accuracy"]) < 1e-6
    assert abs(m["auc"] - meta["metrics"]["eval_auc"]) < 1e-6
    assert m["accuracy"] > 0.55
    assert abs(float(rm.reward_mean) - meta["normalization"]["mean"]) < 1e-6
    assert R.parameter_counts(rm)["head"] == rm.config.d_model
