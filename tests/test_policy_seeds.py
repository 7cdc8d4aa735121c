"""The shipped multi-seed results of Part 7 (bench/policy_seeds.json), read by actor-critic-gae and
trpo-ppo: complete, internally consistent, and made with the notebooks' settings."""
import json

import numpy as np
import pytest

from lib import ROOT

PATH = ROOT / "bench" / "policy_seeds.json"
METHODS = ("A2C", "vanilla PG", "TRPO", "PPO-Penalty", "PPO-Clip")


@pytest.fixture(scope="module")
def shipped():
    return json.loads(PATH.read_text())


def test_complete_with_provenance(shipped):
    assert {"command", "commit", "machine"} <= set(shipped)
    assert (shipped["total_steps"], shipped["eval_every"], shipped["eval_episodes"]) == (
        60_000, 5_000, 10)
    assert len(shipped["seeds"]) >= 5
    for m in METHODS:
        assert sorted(shipped["runs"][m], key=int) == [str(s) for s in shipped["seeds"]], m


def test_recorded_statistics_match_the_curves(shipped):
    for m in METHODS:
        for run in shipped["runs"][m].values():
            ev = np.array(run["eval_returns"])
            steps = np.array(run["eval_steps"])
            assert steps.shape == (12,) and np.all(np.diff(steps) > 0) and steps[0] >= 5_000
            assert ev.shape == (12,) and np.all((ev >= 0) & (ev <= 500))
            assert run["best"] == pytest.approx(ev.max(), abs=0.01)
            assert run["last4"] == pytest.approx(ev[-4:].mean(), abs=0.01)
    for run in shipped["runs"]["TRPO"].values():
        assert run["max_kl"] <= 0.01 and 0 <= run["active_share"] <= 1

