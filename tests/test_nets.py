import pytest
import torch

from lib.rl.nets import mlp, soft_update


def test_mlp_shapes_and_activations():
    net = mlp([4, 8, 2], activation="relu", output_activation="tanh")
    out = net(torch.randn(3, 4))
    assert out.shape == (3, 2) and out.abs().max() <= 1
    assert isinstance(net[1], torch.nn.ReLU) and isinstance(net[-1], torch.nn.Tanh)


def test_mlp_output_gain_shrinks_last_layer():
    torch.manual_seed(0)
    net = mlp([4, 16, 3], output_gain=0.01)
    assert net[-1].weight.abs().max() < 0.01 and net[-1].bias.abs().max() == 0


@pytest.mark.parametrize("sizes", [[4], [4, 0], []])
def test_mlp_rejects_bad_sizes(sizes):
    with pytest.raises(ValueError, match="sizes"):
        mlp(sizes)


def test_mlp_rejects_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation"):
        mlp([2, 2], activation="swish2")


def test_soft_update():
    a, b = mlp([2, 2]), mlp([2, 2])
    before = [p.clone() for p in a.parameters()]
    soft_update(a, b, 0.25)
    for pa, pb, p0 in zip(a.parameters(), b.parameters(), before):
        torch.testing.assert_close(pa, 0.75 * p0 + 0.25 * pb)
    soft_update(a, b, 1.0)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)
    with pytest.raises(ValueError, match="tau"):
        soft_update(a, b, 1.5)


def test_fused_adam_is_adam():
    import torch

    from lib.rl.nets import fused_adam

    torch.manual_seed(0)
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    oa, ob = fused_adam(a.parameters(), 1e-2), torch.optim.Adam(b.parameters(), lr=1e-2)
    x = torch.randn(8, 3)
    for opt, net in ((oa, a), (ob, b)):
        for _ in range(3):
            opt.zero_grad()
            net(x).pow(2).sum().backward()
            opt.step()
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(a.parameters(), b.parameters()))
