"""DPO (lib.align.dpo): the losses against their formulas, log 2 at initialisation, the analytic
gradient weight against autograd, reference log-probs precomputed vs on the fly, the training
loop on a tiny random LM (it learns to prefer the chosen completions), KL and cost probes, and
the shipped artefacts."""
import copy
import json
import math

import numpy as np
import pytest
import torch

from lib.align import dpo as D


def _tiny(seed=0):
    from lib.llm.config import LMConfig
    from lib.llm.model import TinyLM

    torch.manual_seed(seed)
    return TinyLM(LMConfig(vocab_size=12, d_model=32, n_layers=1, n_heads=2, n_kv_heads=2, d_ff=64,
                           max_seq_len=32))


def _pairs(n=12, seed=0):
    """Prompts of 2-4 tokens; chosen completions end with token 3, rejected with token 4."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        p = list(rng.integers(5, 12, size=int(rng.integers(2, 5))))
        body = list(rng.integers(5, 12, size=int(rng.integers(1, 4))))
        out.append((p, body + [3, 1], list(rng.integers(5, 12, size=int(rng.integers(1, 4)))) + [4, 1]))
    return out


PAD = 0


def test_sigmoid_and_ipo_formulas_on_random_inputs():
    g = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (-5 * torch.rand(50, generator=g, dtype=torch.float64) for _ in range(4))
    nc = torch.randint(1, 20, (50,), generator=g)
    nr = torch.randint(1, 20, (50,), generator=g)
    for beta in (0.05, 0.1, 1.0):
        d = (pc - rc) - (pr - rr)
        expect = torch.tensor([-math.log(1 / (1 + math.exp(-beta * float(x)))) for x in d], dtype=torch.float64)
        assert torch.allclose(D.dpo_loss(pc, pr, rc, rr, beta), expect, atol=1e-12)
        h = (pc - rc) / nc - (pr - rr) / nr
        assert torch.allclose(D.dpo_loss(pc, pr, rc, rr, beta, "ipo", nc, nr), (h - 1 / (2 * beta)) ** 2)
    # policy == reference: log 2 for DPO, 1/(4 beta^2) for IPO
    assert torch.allclose(D.dpo_loss(pc, pr, pc, pr, 0.3), torch.full((50,), math.log(2), dtype=torch.float64))
    assert torch.allclose(D.dpo_loss(pc, pr, pc, pr, 0.5, "ipo", nc, nr), torch.ones(50, dtype=torch.float64))


def test_loss_validation():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="beta"):
        D.dpo_loss(x, x, x, x, 0.0)
    with pytest.raises(ValueError, match="loss_type"):
        D.dpo_loss(x, x, x, x, 0.1, "hinge")
    with pytest.raises(ValueError, match="n_chosen"):
        D.dpo_loss(x, x, x, x, 0.1, "ipo")
    with pytest.raises(ValueError, match="one 1-D shape"):
        D.dpo_loss(x, x, x, torch.zeros(4), 0.1)
    with pytest.raises(ValueError, match="non-empty"):
        D.pair_batch([([1], [], [2])], PAD)
    with pytest.raises(ValueError, match="triple"):
        D.pair_batch([([1], [2])], PAD)
    with pytest.raises(ValueError, match="at least one pair"):
        D.pair_batch([], PAD)


def test_gradient_weight_equals_autograd():
    g = torch.Generator().manual_seed(1)
    pc, pr = (-5 * torch.rand(40, generator=g, dtype=torch.float64)).requires_grad_(), \
        (-5 * torch.rand(40, generator=g, dtype=torch.float64)).requires_grad_()
    rc = -5 * torch.rand(40, generator=g, dtype=torch.float64)
    rr = -5 * torch.rand(40, generator=g, dtype=torch.float64)
    beta = 0.2
    D.dpo_loss(pc, pr, rc, rr, beta).sum().backward()
    r_c, r_r = D.implicit_rewards(pc, pr, rc, rr, beta)
    w = D.gradient_weight(r_c, r_r)
    assert torch.allclose(pc.grad, -beta * w, atol=1e-14) and torch.allclose(pr.grad, beta * w, atol=1e-14)
    # the weight is monotone: mis-ranked pairs (r_w < r_l) weigh more than 1/2, well-ranked less
    assert torch.all((w > 0.5) == (r_c < r_r))


def test_preference_correct_counts_ties_as_half():
    assert D.preference_correct(torch.tensor([1.0, 0.0, -1.0]), torch.tensor([0.0, 0.0, 0.0])).tolist() == [1, 0.5, 0]


def test_pair_batch_and_sequence_logps_match_token_by_token():
    model = _tiny()
    pairs = _pairs(5)
    ids, targets = D.pair_batch(pairs, PAD)
    assert ids.shape[0] == 10
    with torch.no_grad():
        lp, n = D.sequence_logps(model, ids, targets)
    for i, (p, c, r) in enumerate(pairs):
        for row, comp in ((i, c), (i + 5, r)):
            seq = torch.tensor([p + comp])
            with torch.no_grad():
                logp = torch.log_softmax(model(seq).logits[0].float(), -1)
            want = sum(float(logp[len(p) - 1 + t, comp[t]]) for t in range(len(comp)))
            assert abs(float(lp[row]) - want) < 1e-5 and int(n[row]) == len(comp)


def test_precomputed_reference_equals_on_the_fly_and_log2_at_start():
    model = _tiny()
    pairs = _pairs(20)
    ref = D.reference_logps(model, pairs, PAD, batch_size=7)      # other batches, other padding
    cfg = D.DPOConfig(beta=0.1)
    sub = pairs[3:11]
    l_pre, s_pre = D.batch_loss(model, sub, PAD, cfg, ref_logps=ref[3:11])
    l_fly, s_fly = D.batch_loss(model, sub, PAD, cfg, reference=copy.deepcopy(model))
    assert abs(float(l_pre) - float(l_fly)) < 1e-7
    assert abs(float(l_fly) - math.log(2)) < 1e-7 and s_fly["accuracy"] == 0.5
    with pytest.raises(ValueError, match="ref_logps or a reference"):
        D.batch_loss(model, sub, PAD, cfg)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="DPOConfig.beta"):
        D.DPOConfig(beta=0)
    with pytest.raises(ValueError, match="DPOConfig.loss_type"):
        D.DPOConfig(loss_type="kto")
    with pytest.raises(ValueError, match="DPOConfig.sft_weight"):
        D.DPOConfig(sft_weight=-1.0)
    with pytest.raises(ValueError, match="DPOConfig.steps"):
        D.DPOConfig(steps=0)
    with pytest.raises(ValueError, match="warmup_steps"):
        D.DPOConfig(steps=3, warmup_steps=5)
    with pytest.raises(TypeError, match="DPOConfig"):
        D.train_dpo({"beta": 0.1}, _pairs(), PAD, _tiny())


@pytest.mark.parametrize("loss_type,sft_weight", [("sigmoid", 0.0), ("sigmoid", 1.0), ("ipo", 0.0)])
def test_training_learns_the_preference_and_precompute_is_the_same_run(loss_type, sft_weight):
    model = _tiny()
    pairs, held = _pairs(24, seed=0), _pairs(12, seed=1)
    cfg = D.DPOConfig(beta=0.5, loss_type=loss_type, sft_weight=sft_weight, steps=30, batch_size=8, lr=3e-3,
                      warmup_steps=2, eval_every=10, seed=0)
    run = D.train_dpo(cfg, pairs, PAD, model, eval_pairs=held)
    assert isinstance(run, D.DPORun) and run.reference is None and len(run.log.updates) == 30
    assert run.log.eval_steps == [0, 10, 20, 30] and run.log.eval_returns[0] == 0.5
    assert run.evals[-1]["accuracy"] == 1.0                      # token 3 over token 4 generalises
    if loss_type == "sigmoid":
        assert abs(run.log.updates[0]["pref_loss"] - math.log(2)) < 1e-6
    # the model passed in is untouched; the same config on the fly gives the same losses
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), _tiny().state_dict().values()))
    fly = D.train_dpo(dataclasses_replace(cfg, precompute_ref=False), pairs, PAD, model, eval_pairs=held)
    assert fly.reference is not None
    np.testing.assert_allclose(fly.log.series("loss"), run.log.series("loss"), rtol=1e-5, atol=1e-6)


def dataclasses_replace(cfg, **kw):
    import dataclasses

    return dataclasses.replace(cfg, **kw)


def test_per_pair_gradients_weight_matches_autograd_on_a_model():
    model = _tiny()
    pairs = _pairs(6)
    ref = D.reference_logps(_tiny(1), pairs, PAD)                   # another model: margins differ from 0
    out = D.per_pair_gradients(model, pairs, ref, PAD, beta=0.3)
    np.testing.assert_allclose(out["dl_dchosen"], -0.3 * out["weight"], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(out["dl_drejected"], 0.3 * out["weight"], rtol=1e-5, atol=1e-8)
    assert np.all(out["grad_norm"] > 0)
    np.testing.assert_allclose(out["grad_norm"], 0.3 * out["weight"] * out["direction_norm"], rtol=1e-4)
    with pytest.raises(ValueError, match="ref must have shape"):
        D.per_pair_gradients(model, pairs, ref[:2], PAD, 0.3)


def test_token_kl_matches_torch_kl_div():
    g = torch.Generator().manual_seed(3)
    p, q = torch.randn(4, 5, 9, generator=g), torch.randn(4, 5, 9, generator=g)
    want = torch.nn.functional.kl_div(torch.log_softmax(q, -1), torch.log_softmax(p, -1), log_target=True,
                                      reduction="none").sum(-1)
    assert torch.allclose(D.token_kl(p, q), want, atol=1e-6)
    assert torch.all(D.token_kl(p, q) >= 0) and torch.allclose(D.token_kl(p, p), torch.zeros(4, 5), atol=1e-6)
    with pytest.raises(ValueError, match="share one shape"):
        D.token_kl(p, q[..., :3])


def test_sampled_kl_is_zero_for_the_reference_and_positive_otherwise():
    from lib.align.tasks import chain_arithmetic_task
    from lib.llm.checkpoint import load_model
    from lib.llm.tokenizer import load_tokenizer

    tok, task = load_tokenizer(), chain_arithmetic_task()
    cold = load_model("tiny-lm-arith-sft")
    same = D.sampled_kl(cold, copy.deepcopy(cold), tok, task.held_out[:6], samples=2, seed=0)
    assert abs(same["kl_per_token"]) < 1e-6 and same["hits"].shape == (6, 2)
    other = D.sampled_kl(cold, load_model("tiny-lm"), tok, task.held_out[:6], samples=2, seed=0)
    assert other["kl_per_token"] > 0.1
    assert same["reward"] == other["reward"]                       # same policy, same seed: same samples


def test_held_bytes_and_update_costs_count_models():
    model = _tiny()
    b = D.held_bytes(model, trainable=True)
    w = sum(p.numel() * 4 for p in model.parameters())
    assert b["weights"] == w and b["gradients"] == w and 2 * w <= b["optimizer"] <= 2 * w + 8 * 64
    assert D.held_bytes(model, trainable=False) == {"weights": w, "gradients": 0, "optimizer": 0}
    costs = D.update_costs(model, _pairs(4), [p for p, _, _ in _pairs(3)], PAD, eos_id=1, group_size=2,
                           max_new_tokens=4, reps=1)
    assert set(costs["PPO"]["models"]) == {"policy", "reference", "reward model", "critic"}
    assert set(costs["DPO"]["models"]) == {"policy", "reference"}
    assert set(costs["DPO, precomputed ref"]["models"]) == {"policy"}
    assert all(c["saved_bytes"] > 0 and c["time_s"] > 0 for c in costs.values())


# ----------------------------------------------------------------------------- shipped artefacts
def test_shipped_dpo_models_reproduce_their_eval_pair_accuracy():
    from lib.align.preference import load_pairs
    from lib.llm.checkpoint import load_model
    from lib.llm.tokenizer import load_tokenizer

    tok = load_tokenizer()
    train, ev, meta = load_pairs()
    cold = load_model("tiny-lm-arith-sft")
    for name, w in D.DPO_MODELS.items():
        model, m = load_model(name, with_meta=True)
        assert m["train_config"]["sft_weight"] == w and m["pairs"]["n_eval"] == len(ev)
        res = D.evaluate_pairs(model, ev, D.reference_logps(cold, ev, tok.pad_id), tok.pad_id,
                               m["train_config"]["beta"])
        assert abs(res["accuracy"] - m["metrics"]["eval_pair_accuracy"]) < 1e-6


def test_shipped_beta_sweep_has_every_run():
    from lib.llm.checkpoint import CHECKPOINT_DIR

    folder = CHECKPOINT_DIR / D.SWEEP_NAME
    res = json.loads((folder / "results.json").read_text())
    meta = json.loads((folder / "meta.json").read_text())
    got = {(r["beta"], r["seed"]) for r in res["runs"]}
    assert got == {(b, s) for b in meta["betas"] for s in meta["seeds"]} and len(meta["betas"]) >= 4
    assert all(r["kl_per_token"] >= 0 and 0 <= r["reward"] <= 1 for r in res["runs"])
    assert "command" in meta and "commit" in meta
