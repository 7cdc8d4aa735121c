"""The data-parallel exercise checker accepts the token-weighted combination and rejects the
plain average; its reference equals one process's gradient on the whole batch."""
import numpy as np
import pytest
import torch

from lib.exercises import data_parallel as ex


def test_reference_equals_the_full_batch_gradient():
    torch.manual_seed(0)
    w = torch.randn(5, requires_grad=True)
    xs = [torch.randn(n, 5) for n in (3, 11, 6)]   # three ranks, unequal token counts
    grads = []
    for x in xs:
        (g,) = torch.autograd.grad((x @ w).pow(2).mean(), w)
        grads.append(g.numpy())
    (full,) = torch.autograd.grad((torch.cat(xs) @ w).pow(2).mean(), w)
    got = ex.combine_rank_gradients_reference(grads, [3, 11, 6])
    np.testing.assert_allclose(got, full.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="one token count"):
        ex.combine_rank_gradients_reference(grads, [3, 11])
    with pytest.raises(ValueError, match="at least one token"):
        ex.combine_rank_gradients_reference(grads, [3, 0, 6])


def test_checker_accepts_reference_and_rejects_plain_average_and_stub():
    assert ex.check_combine_rank_gradients(ex.combine_rank_gradients_reference)
    avg = ex.check_combine_rank_gradients(lambda grads, tokens: np.mean(grads, axis=0))
    assert not avg and avg.attempted

    def stub(grads, tokens):
        raise NotImplementedError

    report = ex.check_combine_rank_gradients(stub)
    assert not report and not report.attempted
