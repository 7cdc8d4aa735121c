"""lib.runs: config checks name the field, TrainLog records and answers, eval seeds."""
import dataclasses

import numpy as np
import pytest

from lib.runs import (Run, Stopwatch, TrainLog, check_choice, check_int, check_positive, check_range,
                      eval_seed)


@dataclasses.dataclass
class Cfg:
    n: int = 3
    lr: float = 1e-3
    gamma: float = 0.99
    kind: str = "a"


def test_checks_accept_good_values_and_name_the_field():
    c = Cfg()
    check_int(c, "n")
    check_positive(c, "lr")
    check_range(c, "gamma", 0, 1)
    check_choice(c, "kind", ("a", "b"))
    with pytest.raises(ValueError, match=r"Cfg.n must be an integer >= 1, got True"):
        check_int(Cfg(n=True), "n")
    with pytest.raises(ValueError, match=r"Cfg.n must be an integer >= 1"):
        check_int(Cfg(n=2.0), "n")
    with pytest.raises(ValueError, match=r"Cfg.lr must be a number > 0"):
        check_positive(Cfg(lr=0.0), "lr")
    with pytest.raises(ValueError, match=r"Cfg.gamma must be in \[0, 1\)"):
        check_range(Cfg(gamma=1.0), "gamma", 0, 1, high_open=True)
    with pytest.raises(ValueError, match="Cfg.gamma"):
        check_range(Cfg(gamma=float("nan")), "gamma", 0, 1)
    with pytest.raises(ValueError, match=r"Cfg.kind must be one of \('a', 'b'\)"):
        check_choice(Cfg(kind="c"), "kind", ("a", "b"))
    with pytest.raises(AttributeError, match="no field 'missing'"):
        check_int(c, "missing")


def test_train_log_records_and_answers():
    log = TrainLog()
    assert log.record_eval(100, lambda: [1.0, 3.0]) == 2.0
    log.record_eval(200, lambda: np.array([5.0, 5.0]))
    assert log.eval_stds == [1.0, 0.0]
    assert log.steps_to(4.0) == 200 and log.steps_to(2.0) == 100 and log.steps_to(9.0) is None
    log.record_update(10, loss=1.5, kl=0.01)
    log.record_update(20, loss=0.5, kl=0.02)
    assert np.allclose(log.series("loss"), [1.5, 0.5]) and np.allclose(log.series("step"), [10, 20])
    with pytest.raises(KeyError, match="logged"):
        log.series("nope")
    log.record_episode(7, 3.5)
    assert log.episode_returns == [3.5] and log.episode_end_steps == [7]
    with pytest.raises(ValueError, match="no episode returns"):
        log.record_eval(300, lambda: [])
    with Stopwatch(log):
        pass
    assert log.wall_time >= 0 and log.as_dict()["eval_steps"] == [100, 200]
    assert Run(config=Cfg(), log=log).log is log


def test_eval_seeds_are_disjoint_from_training_seeds_and_each_other():
    assert eval_seed(0) == 10_000 and eval_seed(1) == 10_097
    blocks = [set(range(eval_seed(s), eval_seed(s) + 97)) for s in range(20)]
    assert all(not (a & b) for i, a in enumerate(blocks) for b in blocks[i + 1:])
