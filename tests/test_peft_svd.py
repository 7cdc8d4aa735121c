"""Tests of lib.peft.svd: energy, Eckart–Young, on random matrices and the shipped checkpoints."""
import pytest
import torch

from lib.peft.svd import (energy_captured, lora_parameter_saving, projection_error, singular_values,
                          truncate, truncation_error, weight_deltas)


def test_eckart_young_on_a_random_matrix():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(30, 20, generator=g, dtype=torch.float64)
    s = singular_values(m)
    assert torch.all(s[:-1] >= s[1:])
    e = energy_captured(s)
    assert e[-1] == pytest.approx(1.0) and torch.all(e[1:] >= e[:-1])
    for r in (0, 1, 5, 20):
        t = truncate(m, r)
        assert torch.linalg.matrix_rank(t) == r
        err = float(torch.linalg.matrix_norm(m - t))
        assert err == pytest.approx(truncation_error(s, r), rel=1e-10, abs=1e-10)
        if 0 < r < 20:
            assert all(projection_error(m, r, g) >= err for _ in range(20))
            assert 1 - e[r - 1] == pytest.approx((truncation_error(s, r) / float(s.norm())) ** 2)


def test_exact_low_rank_matrix_is_recovered():
    g = torch.Generator().manual_seed(1)
    m = torch.randn(12, 3, generator=g, dtype=torch.float64) @ torch.randn(3, 9, generator=g, dtype=torch.float64)
    assert truncation_error(singular_values(m), 3) < 1e-10
    torch.testing.assert_close(truncate(m, 3), m)


def test_saving_and_validation():
    assert lora_parameter_saving(1024, 1024, 2) == {"full": 1048576, "lora": 4096, "ratio": 4096 / 1048576}
    with pytest.raises(ValueError):
        truncate(torch.zeros(3, 3), 4)
    with pytest.raises(ValueError):
        singular_values(torch.zeros(3))
    with pytest.raises(ValueError):
        energy_captured(torch.tensor([-1.0]))
    with pytest.raises(ValueError):
        lora_parameter_saving(0, 3, 1)
    with pytest.raises(ValueError):
        truncation_error(torch.ones(3), 5)


def test_real_delta_of_the_shipped_checkpoints():
    from lib.llm.checkpoint import load_model

    base, tuned = load_model("tiny-lm"), load_model("tiny-lm-arith-sft")
    d = weight_deltas(base, tuned)
    assert "layers.0.self_attn.q_proj.weight" in d and all(v.dtype == torch.float64 for v in d.values())
    dw = d["layers.0.self_attn.q_proj.weight"]
    assert dw.abs().max() > 0
    s = singular_values(dw)
    for r in (1, 4, 16):
        assert float(torch.linalg.matrix_norm(dw - truncate(dw, r))) == pytest.approx(truncation_error(s, r),
                                                                                        rel=1e-9)
    with pytest.raises(ValueError):
        weight_deltas(base, torch.nn.Linear(2, 2))
