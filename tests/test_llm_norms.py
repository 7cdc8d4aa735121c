"""lib.llm.norms equals torch's BatchNorm1d (training, running stats, eval) and LayerNorm;
the book's RMSNorm equals torch.nn.RMSNorm."""
import pytest
import torch

from lib.llm import norms as N


@pytest.mark.parametrize("shape", [(8, 5), (6, 5, 7)])
def test_batchnorm_equals_torch_train_and_eval(shape):
    g = torch.Generator().manual_seed(0)
    ref = torch.nn.BatchNorm1d(shape[1], momentum=0.2).double()
    mine = N.BatchNorm1d(shape[1], momentum=0.2).double()
    with torch.no_grad():
        for m in (ref, mine):
            m.weight.copy_(torch.linspace(0.5, 2, shape[1]))
            m.bias.copy_(torch.linspace(-1, 1, shape[1]))
    for step in range(4):
        x = torch.randn(shape, generator=g, dtype=torch.float64) * 3 + step
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yb = ref(xa), mine(xb)
        torch.testing.assert_close(ya, yb)
        (ya * torch.arange(ya.numel()).view_as(ya)).sum().backward()
        (yb * torch.arange(yb.numel()).view_as(yb)).sum().backward()
        torch.testing.assert_close(xa.grad, xb.grad)
    torch.testing.assert_close(ref.running_mean, mine.running_mean)
    torch.testing.assert_close(ref.running_var, mine.running_var)
    torch.testing.assert_close(ref.weight.grad, mine.weight.grad)
    ref.eval()
    mine.eval()
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    torch.testing.assert_close(ref(x), mine(x))


@pytest.mark.parametrize("shape,norm_shape", [((4, 6), (6,)), ((2, 3, 8), (8,)),
                                              ((2, 3, 4, 5), (4, 5))])
def test_layernorm_equals_torch(shape, norm_shape):
    g = torch.Generator().manual_seed(1)
    ref = torch.nn.LayerNorm(norm_shape).double()
    mine = N.LayerNorm(norm_shape).double()
    with torch.no_grad():
        w = torch.randn(norm_shape, generator=g, dtype=torch.float64)
        b = torch.randn(norm_shape, generator=g, dtype=torch.float64)
        for m in (ref, mine):
            m.weight.copy_(w)
            m.bias.copy_(b)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 2 + 1
    torch.testing.assert_close(ref(x), mine(x))


def test_rmsnorm_equals_torch():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 7, 16, generator=g) * 4
    ref = torch.nn.RMSNorm(16, eps=1e-5)
    mine = N.RMSNorm(16, eps=1e-5)
    with torch.no_grad():
        w = torch.randn(16, generator=g)
        ref.weight.copy_(w)
        mine.weight.copy_(w)
    torch.testing.assert_close(ref(x), mine(x))


def test_axes_and_batch_dependence():
    ids = N.normalised_axes("batch", (2, 3, 4))
    assert ids.unique().numel() == 3 and bool((ids[:, 1] == 1).all())
    ids = N.normalised_axes("layer", (2, 3, 4))
    assert ids.unique().numel() == 8 and bool((ids[1, :, 2] == ids[1, 0, 2]).all())
    g = torch.Generator().manual_seed(3)
    pool = torch.randn(100, 6, generator=g) * 2 + 1
    bn, ln = N.BatchNorm1d(6), N.LayerNorm(6)
    assert N.batch_dependence(bn, pool[0], pool[1:], 4, 10, g) > 0.1
    assert N.batch_dependence(ln, pool[0], pool[1:], 4, 10, g) < 1e-6
    bn.eval()
    assert N.batch_dependence(bn, pool[0], pool[1:], 4, 10, g) < 1e-6


def test_validation_errors():
    with pytest.raises(ValueError, match="axes"):
        N.BatchNorm1d(3)(torch.zeros(3))
    with pytest.raises(ValueError, match="more than one value"):
        N.BatchNorm1d(3)(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="must end in"):
        N.LayerNorm(4)(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="kind"):
        N.normalised_axes("group", (1, 1, 1))
    with pytest.raises(TypeError, match="floating"):
        N.layer_norm(torch.zeros(2, 2, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="reps"):
        N.time_per_call(torch.relu, torch.zeros(2), reps=0)
    assert N.time_per_call(torch.relu, torch.zeros(2), reps=2) >= 0


def test_layer_gradient_norms_on_a_variant_decoder():
    from lib.llm.variants import VariantConfig, VariantLM

    torch.manual_seed(0)
    m = VariantLM(VariantConfig(vocab_size=50, d_model=16, n_layers=3, n_heads=2,
                                max_seq_len=8))
    ids = torch.randint(0, 50, (2, 8))
    g = N.layer_gradient_norms(m, ids, ids.roll(-1, 1))
    assert len(g) == 3 and all(v > 0 for v in g)
    assert all(p.grad is None for p in m.parameters())
    with pytest.raises(ValueError, match="equal"):
        N.layer_gradient_norms(m, ids, ids[:, :4])
    with pytest.raises(TypeError, match="layers"):
        N.layer_gradient_norms(torch.nn.Linear(2, 2), ids, ids)
