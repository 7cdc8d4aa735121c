"""PPO-RLHF (lib.align.rlhf): the four models, the dual head, four roles on one base, the per-token
KL and its estimators, KL-penalised rewards, token-level GAE, the KL controller and the loop."""
import copy

import numpy as np
import pytest
import torch

from helpers import small_lm
from lib.align.reward import RewardModel
from lib.align.rlhf import (ActorCritic, AdaptiveKL, RLHFConfig, RLHFRun, SharedBase, build_four_models,
                            same_weights, token_gae, token_kl_estimates, train_rlhf, weight_bytes)
from lib.llm.generate import left_pad, sample_groups
from lib.objectives import kl_k1, kl_k2, kl_k3
from lib.rl.gae import gae_reference_loop


def _rm(lm, seed=0):
    return RewardModel.from_lm(lm, seed=seed, head_std=0.1).eval()


def test_four_models_flags_and_initial_weights():
    sft = small_lm()
    rm = _rm(sft)
    before = copy.deepcopy(sft)
    fm = build_four_models(sft, rm)
    assert fm.trainable() == {"actor": True, "reference": False, "reward": False, "critic": True}
    assert same_weights(fm.actor, sft) and same_weights(fm.reference, sft)
    assert same_weights(fm.reward, rm) and same_weights(fm.critic, rm)
    assert fm.actor is not sft and fm.critic is not rm
    assert same_weights(sft, before)                     # the inputs are not changed
    with torch.no_grad():
        next(fm.actor.parameters()).add_(1.0)
    assert not same_weights(fm.actor, fm.reference)      # copies, not shared tensors
    with pytest.raises(TypeError, match="token_scores"):
        build_four_models(sft, sft)


def test_dual_head_equals_two_models():
    lm = small_lm()
    head = torch.nn.Linear(lm.config.d_model, 1)
    ac = ActorCritic(copy.deepcopy(lm), copy.deepcopy(head))
    ids, attn = left_pad([[3, 4, 5, 6], [7, 8]], 0)
    logits, values = ac(ids, attention_mask=attn)
    critic = RewardModel(copy.deepcopy(lm), bias=True)
    critic.head.load_state_dict(head.state_dict())
    assert torch.equal(logits, lm(ids, attention_mask=attn).logits)
    assert torch.equal(values, critic.token_scores(ids, attention_mask=attn))
    assert values.shape == ids.shape and logits.shape == (*ids.shape, lm.config.vocab_size)
    assert weight_bytes(ac) < weight_bytes(lm, critic)
    with pytest.raises(ValueError, match="nn.Linear"):
        ActorCritic(lm, torch.nn.Linear(3, 1))


def test_shared_base_roles_equal_standalone_models():
    base = small_lm()
    sb = SharedBase(base, r=2, alpha=4.0)
    sb.perturb(std=0.05, seed=1)
    ids, attn = left_pad([[3, 4, 5, 6, 9], [7, 8, 2]], 0)
    outs = {}
    for name in ("actor", "reference"):
        got = sb.role(name)(ids, attention_mask=attn).logits
        want = sb.standalone(name)(ids, attention_mask=attn).logits
        assert torch.allclose(got, want, atol=1e-5), name
        outs[name] = got
    assert torch.equal(outs["reference"], base(ids, attention_mask=attn).logits)
    assert not torch.allclose(outs["actor"], outs["reference"], atol=1e-3)
    for name in ("reward", "critic"):
        view, alone = sb.role(name), sb.standalone(name)
        assert torch.allclose(view.token_scores(ids, attn), alone.token_scores(ids, attn), atol=1e-5)
        assert torch.allclose(view(ids, attn), alone(ids, attn), atol=1e-5)
        assert view(ids, attn).shape == (2,)
    # switching back and forth is exact, and roles own disjoint parameters
    assert torch.equal(sb.role("actor")(ids, attention_mask=attn).logits, outs["actor"])
    owned = [set(map(id, sb.role_parameters(r))) for r in ("actor", "reward", "critic")]
    assert all(not (a & b) for i, a in enumerate(owned) for b in owned[i + 1:])
    assert sb.role_parameters("reference") == []
    four = weight_bytes(*(sb.standalone(r) for r in ("actor", "reference", "reward", "critic")))
    assert weight_bytes(sb) < 0.5 * four
    with pytest.raises(ValueError, match="role"):
        sb.role("judge")
    with pytest.raises(ValueError, match="scalar head"):
        sb.role("actor").token_scores(ids, attn)


def test_kl_estimators_vs_exact_on_one_distribution():
    """k1 and k3 are unbiased for KL(p || q) from samples of p (within 4 standard errors); k2 is >= 0."""
    g = torch.Generator().manual_seed(0)
    lp = torch.log_softmax(torch.randn(50, generator=g), -1)
    lq = torch.log_softmax(lp + 0.5 * torch.randn(50, generator=g), -1)
    exact = float((lp.exp() * (lp - lq)).sum())
    x = torch.multinomial(lp.exp(), 200_000, replacement=True, generator=g)
    for fn in (kl_k1, kl_k3):
        k = fn(lp[x], lq[x]).double()
        assert abs(float(k.mean()) - exact) < 4 * float(k.std()) / np.sqrt(len(k)), fn.__name__
    assert bool((kl_k2(lp[x], lq[x]) >= 0).all()) and bool((kl_k3(lp[x], lq[x]) >= 0).all())


def test_token_kl_estimates_shapes_and_zero_for_equal_models():
    pol = small_lm()
    ids, attn, cm, n = sample_groups(pol, [[3, 4, 5], [6, 7]], 2, 4, eos_id=1,
                                     generator=torch.Generator().manual_seed(0))
    est = token_kl_estimates(pol, copy.deepcopy(pol), ids, attn, n)
    for k in ("exact", "k1", "k2", "k3"):
        assert est[k].shape == cm.shape and torch.allclose(est[k], torch.zeros_like(est[k]), atol=1e-6)
    other = small_lm(d_ff=64)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
    est = token_kl_estimates(pol, other, ids, attn, n)
    assert bool((est["exact"] >= -1e-6).all()) and float(est["exact"].mean()) > 0
    assert torch.allclose(est["k1"], est["logp"] - est["logp_ref"])


def test_token_gae_matches_reference_loop_per_answer():
    g = torch.Generator().manual_seed(0)
    r, v = torch.randn(3, 6, generator=g), torch.randn(3, 6, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
    adv, ret = token_gae(r, v, mask, gamma=0.9, lam=0.8)
    for b in range(3):
        L = int(mask[b].sum())
        term = np.zeros((L, 1))
        term[-1] = 1
        want = gae_reference_loop(r[b, :L, None].double().numpy(), v[b, :L, None].double().numpy(), [0.0],
                                  0.9, 0.8, term, np.zeros((L, 1)), np.zeros((L, 1)))[:, 0]
        assert np.allclose(adv[b, :L].numpy(), want, atol=1e-6)
        assert torch.all(adv[b, L:] == 0) and torch.all(ret[b, L:] == 0)
    assert torch.allclose(ret, (adv + v) * mask, atol=1e-6)
    # lam = gamma = 1: the advantage is the return-to-go minus the value
    adv1, _ = token_gae(r, v, mask, 1.0, 1.0)
    rtg = torch.flip(torch.cumsum(torch.flip(r * mask, [1]), 1), [1])
    assert torch.allclose(adv1, (rtg - v) * mask, atol=1e-5)
    with pytest.raises(ValueError, match="prefix"):
        token_gae(r, v, torch.tensor([[0, 1, 1, 1, 1, 1]] * 3))
    with pytest.raises(ValueError, match="share one"):
        token_gae(r, v[:, :3], mask)


def test_adaptive_kl_controller():
    fixed = AdaptiveKL(0.1)
    assert fixed.update(100.0, 64) == 0.1
    ctl = AdaptiveKL(0.1, target=1.0, horizon=100)
    assert ctl.update(5.0, 10) == pytest.approx(0.1 * (1 + 0.2 * 0.1))     # clipped at +20 %
    c = ctl.coef
    assert ctl.update(0.9, 10) == pytest.approx(c * (1 - 0.1 * 0.1))
    with pytest.raises(ValueError):
        AdaptiveKL(0.1, target=0.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"updates": 0}, "RLHFConfig.updates"),
    ({"samples_per_prompt": 1}, "RLHFConfig.samples_per_prompt"),
    ({"kl_coef": -0.1}, "RLHFConfig.kl_coef"),
    ({"lam": 1.5}, "RLHFConfig.lam"),
    ({"clip_eps": 1.0}, "RLHFConfig.clip_eps"),
    ({"kl_target": 0.0}, "RLHFConfig.kl_target"),
    ({"lr": 0.0}, "RLHFConfig.lr"),
])
def test_rlhf_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RLHFConfig(**kwargs)


class _TokenRM(RewardModel):
    """A reward model that pays 1 when the answer's first token is 7 (its head still gives the critic
    trainable values)."""

    def __init__(self, lm, n_prompt):
        super().__init__(lm, bias=True)
        self.n_prompt = n_prompt

    def forward(self, ids, attention_mask=None):
        return (ids[:, self.n_prompt] == 7).float()


def test_train_rlhf_teaches_a_tiny_lm_the_rewarded_token():
    torch.set_num_threads(1)
    lm = small_lm(vocab_size=12, d_model=32, n_layers=1, max_seq_len=32)
    rng = np.random.default_rng(0)
    prompts = [list(rng.integers(2, 10, size=3)) for _ in range(32)]
    rm = _TokenRM(copy.deepcopy(lm), n_prompt=3)
    before = copy.deepcopy(lm)
    cfg = RLHFConfig(updates=20, prompts_per_update=4, samples_per_prompt=8, max_new_tokens=2, lr=2e-2,
                     critic_lr=1e-2, kl_coef=0.01, ppo_epochs=2, minibatches=2)
    run = train_rlhf(cfg, lm, rm, prompts, eos_id=11, verifier=lambda i, c: float(c[0] == 7))
    assert isinstance(run, RLHFRun) and len(run.log.updates) == 20
    assert same_weights(lm, before)                                    # the SFT model is untouched
    score = run.log.series("score")
    assert score[-5:].mean() > score[:5].mean() + 0.3
    assert np.allclose(run.log.series("accuracy"), score)             # here the verifier is the RM
    assert np.all(np.diff(run.log.series("tokens")) > 0)
    assert [r["generates"] for r in run.io] == [True, False, False, False, False]
    assert {r["model"] for r in run.io} == {"actor", "reference", "reward", "critic"}
    with pytest.raises(ValueError, match="prompts_per_update"):
        train_rlhf(RLHFConfig(prompts_per_update=64), lm, rm, prompts, eos_id=11)


def test_shipped_sweep_reproduces_a_recorded_metric():
    """The shipped recipe policy gives the recorded greedy verdicts on 20 held-out questions (at most
    one may flip on another CPU); the results cover every coefficient x seed of the sidecar."""
    import json

    from lib.align.rlhf import SWEEP_NAME
    from lib.align.tasks import chain_arithmetic_task, encode_prompts
    from lib.data import verify_answer
    from lib.llm.checkpoint import CHECKPOINT_DIR, load_model
    from lib.llm.generate import greedy_accuracy
    from lib.llm.tokenizer import load_tokenizer

    torch.set_num_threads(1)
    folder = CHECKPOINT_DIR / SWEEP_NAME
    res = json.loads((folder / "results.json").read_text())
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["command"].startswith("python -m lib.align.rlhf")
    assert {(r["kl_coef"], r["seed"]) for r in res["sweep"]} == {(c, s) for c in meta["coefs"]
                                                                 for s in meta["seeds"]}
    assert set(res["compare"]) == {"SFT", "DPO", "PPO-RLHF", "GRPO", "rejection sampling"}
    tok, task = load_tokenizer(), chain_arithmetic_task()
    assert meta["task"] == task.describe()
    probs = task.held_out[:20]
    now = np.zeros(20, dtype=int)

    def check(i, c):
        now[i] = verify_answer(probs[i], tok.decode(c, skip_special_tokens=True))
        return now[i]

    greedy_accuracy(load_model(folder / "policy"), encode_prompts(tok, probs), check, tok.eos_id)
    assert (now == np.array(res["compare"]["PPO-RLHF"]["greedy_hits"][:20])).sum() >= 19


def test_make_experience_rewards_values_and_io():
    from lib.align.rlhf import make_experience

    lm = small_lm()
    fm = build_four_models(lm, _rm(lm))
    cfg = RLHFConfig(prompts_per_update=3, samples_per_prompt=2, max_new_tokens=5, kl_coef=0.2)
    exp = make_experience(fm, [[3, 4, 5], [6, 7], [8]], 1, cfg, 0.2, torch.Generator().manual_seed(0))
    B = 6
    assert exp.scores.shape == (B,) and exp.values.shape == exp.logp.shape == exp.mask.shape
    m = exp.mask.float()
    assert torch.allclose(exp.rewards.sum(1), exp.scores - 0.2 * ((exp.logp - exp.logp_ref) * m).sum(1),
                          atol=1e-5)
    assert torch.allclose(exp.logp, exp.logp_ref)                 # actor == reference at the start
    assert np.isnan(exp.correct).all()                            # no verifier given
    assert [r["generates"] for r in exp.io] == [True, False, False, False, False]
