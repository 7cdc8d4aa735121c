"""Rejection-sampling fine-tuning (lib.align.rejection): best-of-N selection and the round loop."""
import copy

import numpy as np
import pytest
import torch

from helpers import small_lm
from lib.align.rejection import RejectionConfig, RejectionRun, best_of_n, train_rejection
from lib.align.reward import RewardModel


class _TokenRM(RewardModel):
    """Pays 1 when the answer's first token is 7, plus a little for each 5 anywhere in the answer."""

    def __init__(self, lm, n_prompt):
        super().__init__(lm)
        self.n_prompt = n_prompt

    def forward(self, ids, attention_mask=None):
        comp = ids[:, self.n_prompt:]
        keep = attention_mask[:, self.n_prompt:].bool()
        return (comp[:, 0] == 7).float() + 0.1 * ((comp == 5) & keep).float().sum(1)


def _setup():
    lm = small_lm(vocab_size=12, d_model=32, n_layers=1, max_seq_len=32)
    rng = np.random.default_rng(0)
    prompts = [list(rng.integers(2, 10, size=3)) for _ in range(64)]
    return lm, prompts, _TokenRM(copy.deepcopy(lm), 3).eval()


def test_best_of_n_keeps_the_highest_score_and_cuts_at_eos():
    lm, prompts, rm = _setup()
    out = best_of_n(lm, rm, prompts[:5], 6, 4, eos_id=11, generator=torch.Generator().manual_seed(0),
                    batch_size=2)
    assert out["scores"].shape == (5, 6) and len(out["completions"]) == 5
    assert np.array_equal(out["best"], out["scores"].argmax(1))
    for k, cs in enumerate(out["completions"]):
        assert len(cs) == 6
        for j, c in enumerate(cs):
            assert 1 <= len(c) <= 4 and 11 not in c[:-1]            # cut after the first EOS
            want = float(c[0] == 7) + 0.1 * sum(t == 5 for t in c)
            assert out["scores"][k, j] == pytest.approx(want)
    assert out["tokens"] == sum(len(c) for cs in out["completions"] for c in cs)
    with pytest.raises(ValueError, match="at least one"):
        best_of_n(lm, rm, [], 2, 4, 11, torch.Generator())


def test_rejection_sampling_raises_the_reward_round_over_round():
    torch.set_num_threads(1)
    lm, prompts, rm = _setup()
    before = copy.deepcopy(lm)
    cfg = RejectionConfig(rounds=3, prompts_per_round=32, samples=8, max_new_tokens=2, sft_steps=20,
                          batch_size=16, lr=1e-2)
    run = train_rejection(cfg, lm, rm, prompts, eos_id=11, pad_id=0, verifier=lambda i, c: float(c[0] == 7))
    assert isinstance(run, RejectionRun) and len(run.log.updates) == 3
    assert all(torch.equal(a, b) for a, b in zip(lm.parameters(), before.parameters()))   # a copy trained
    score = run.log.series("score")
    assert np.all(np.diff(score) > 0), score
    assert np.all(run.log.series("best_score") >= score)
    assert run.log.series("accuracy")[-1] > run.log.series("accuracy")[0]
    assert np.all(np.diff(run.log.series("tokens")) > 0)


@pytest.mark.parametrize("kwargs, match", [
    ({"rounds": 0}, "RejectionConfig.rounds"),
    ({"samples": 1}, "RejectionConfig.samples"),
    ({"lr": 0.0}, "RejectionConfig.lr"),
    ({"seed": -1}, "RejectionConfig.seed"),
])
def test_rejection_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RejectionConfig(**kwargs)


def test_train_rejection_needs_enough_prompts():
    lm, prompts, rm = _setup()
    with pytest.raises(ValueError, match="prompts_per_round"):
        train_rejection(RejectionConfig(prompts_per_round=100), lm, rm, prompts, 11, 0)
