"""Tests of lib.llm.memory: hand backward == autograd, gradient accumulation, checkpointing."""
import copy

import pytest
import torch

from lib.llm import memory as M
from lib.llm.config import LMConfig
from lib.llm.model import TinyLM


def _mlp(seed=0, sizes=(5, 12, 12, 12, 4), n=24):
    g = torch.Generator().manual_seed(seed)
    params = M.init_mlp(list(sizes), g)
    x = torch.randn(n, sizes[0], generator=g, dtype=torch.float64)
    y = torch.randint(0, sizes[-1], (n,), generator=g)
    return params, x, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hand_backward_equals_autograd_float64(seed):
    params, x, y = _mlp(seed)
    loss_h, grads_h = M.manual_gradients(params, x, y)
    loss_a, grads_a = M.autograd_gradients(params, x, y)
    assert abs(float(loss_h - loss_a)) <= 1e-12
    for (dW, db), (aW, ab) in zip(grads_h, grads_a):
        assert float((dW - aW).abs().max()) <= 1e-10
        assert float((db - ab).abs().max()) <= 1e-10


def test_hand_backward_matches_finite_differences():
    params, x, y = _mlp(3, sizes=(3, 4, 2), n=6)
    _, grads = M.manual_gradients(params, x, y)
    W = params[0][0]
    eps = 1e-6
    for i, j in [(0, 0), (2, 1), (3, 2)]:
        W[i, j] += eps
        lp, _ = M.manual_gradients(params, x, y)
        W[i, j] -= 2 * eps
        lm, _ = M.manual_gradients(params, x, y)
        W[i, j] += eps
        assert abs(float((lp - lm) / (2 * eps)) - float(grads[0][0][i, j])) <= 1e-8


def test_saved_tensors_cover_the_hand_cache():
    params, x, y = _mlp(0)
    log = M.SavedTensorLog()
    M.autograd_gradients(params, x, y, log)
    _, cache = M.mlp_forward(params, x)
    cache_bytes = sum(t.numel() * t.element_size() for t in cache)
    shapes = [e.shape for e in log.entries if e.kind == "activation"]
    for t in cache:
        assert tuple(t.shape) in shapes
    assert log.activation_bytes >= cache_bytes
    # W_l is saved for the gradient of layer l's input; the input x needs none, so not W_1
    assert log.by_kind()["weight"] == len(params) - 1
    names = M.graph_nodes(_loss(params, x, y))
    assert names[0] == "NllLossBackward0" and names.count("TanhBackward0") == len(params) - 1


def _loss(params, x, y):
    leaves = [(W.clone().requires_grad_(), b.clone().requires_grad_()) for W, b in params]
    h = x
    for W, b in leaves[:-1]:
        h = torch.tanh(torch.nn.functional.linear(h, W, b))
    return torch.nn.functional.cross_entropy(torch.nn.functional.linear(h, *leaves[-1]), y)


def test_mlp_input_validation():
    params, x, y = _mlp(0)
    with pytest.raises(ValueError, match="sizes"):
        M.init_mlp([4])
    with pytest.raises(ValueError, match="features"):
        M.mlp_forward(params, x[:, :3])
    with pytest.raises(ValueError, match="classes"):
        M.manual_gradients(params, x, y + 10)
    with pytest.raises(ValueError, match="integer"):
        M.manual_gradients(params, x, y.double())
    with pytest.raises(ValueError, match="cache"):
        M.mlp_backward(params, [x], torch.zeros(len(x), 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="grad_fn"):
        M.graph_nodes(torch.zeros(2))


# ----------------------------------------------------------------------------- accumulation
CFG = LMConfig(vocab_size=64, d_model=32, n_layers=3, n_heads=4, n_kv_heads=2, max_seq_len=32)


def _model(dtype=torch.float64):
    torch.manual_seed(0)
    return TinyLM(CFG).to(dtype)


def _micro_batches(counts, seed=0, rows=2, T=16):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in counts:
        x = torch.randint(0, CFG.vocab_size, (rows, T), generator=g)
        y = torch.randint(0, CFG.vocab_size, (rows, T), generator=g)
        y[:, n:] = M.IGNORE_INDEX
        out.append((x, y))
    return out


def test_accumulation_equals_big_batch_when_normalised_by_tokens():
    model = _model()
    mbs = _micro_batches([16, 9, 3, 12])
    lb = M.big_batch_gradients(model, mbs)
    gb = M.grads_of(model)
    lt = M.accumulate_gradients(model, mbs, "tokens")
    gt = M.grads_of(model)
    assert abs(lb - lt) <= 1e-6
    assert M.max_abs_difference(gb, gt) <= 1e-6 * max(float(v.abs().max()) for v in gb.values())
    # one optimizer step from each gives the same parameters
    m1, m2 = copy.deepcopy(model), copy.deepcopy(model)
    for m, acc in ((m1, False), (m2, True)):
        opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
        (M.accumulate_gradients(m, mbs, "tokens") if acc else M.big_batch_gradients(m, mbs))
        opt.step()
    assert M.max_abs_difference(dict(m1.named_parameters()), dict(m2.named_parameters())) <= 1e-6


def test_per_micro_batch_mean_is_wrong_with_unequal_counts_and_right_with_equal():
    model = _model()
    unequal = _micro_batches([16, 2, 2, 16])
    M.big_batch_gradients(model, unequal)
    gb = M.grads_of(model)
    M.accumulate_gradients(model, unequal, "micro")
    assert M.max_abs_difference(gb, M.grads_of(model)) > 1e-3
    equal = _micro_batches([10, 10, 10], seed=1)
    M.big_batch_gradients(model, equal)
    gb = M.grads_of(model)
    M.accumulate_gradients(model, equal, "micro")
    assert M.max_abs_difference(gb, M.grads_of(model)) <= 1e-10


def test_micro_batch_loss_sums_to_the_mean():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 7, generator=g, dtype=torch.float64)
    y = torch.randint(0, 7, (3, 5), generator=g)
    y[0, 2:] = M.IGNORE_INDEX
    total = M.count_tokens(y)
    parts = sum(M.micro_batch_loss(logits[i:i + 1], y[i:i + 1], total) for i in range(3))
    ref = torch.nn.functional.cross_entropy(logits.reshape(-1, 7), y.reshape(-1))
    assert abs(float(parts - ref)) <= 1e-12


def test_accumulation_input_validation():
    model = _model()
    mbs = _micro_batches([4, 4])
    with pytest.raises(ValueError, match="normalise"):
        M.accumulate_gradients(model, mbs, "batch")
    with pytest.raises(ValueError, match="at least one micro-batch"):
        M.accumulate_gradients(model, [])
    with pytest.raises(ValueError, match="at least one token"):
        M.accumulate_gradients(model, _micro_batches([4, 0]))
    with pytest.raises(ValueError, match="same shape"):
        M.big_batch_gradients(model, [(mbs[0][0], mbs[0][1][:, :3])])
    with pytest.raises(ValueError, match="total_tokens"):
        M.micro_batch_loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), 0)
    with pytest.raises(ValueError, match="more than total_tokens"):
        M.micro_batch_loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="targets"):
        M.micro_batch_loss(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long), 3)


# ----------------------------------------------------------------------------- checkpointing
def _batch(seed=0, B=2, T=24):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, CFG.vocab_size, (B, T), generator=g)
    return x, torch.randint(0, CFG.vocab_size, (B, T), generator=g)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_checkpointed_gradients_equal_plain(dtype):
    model = _model(dtype)
    x, y = _batch()
    loss0, g0, b0 = M.lm_loss_and_grads(model, x, y)
    for strategy, k in [("blocks", 1), ("blocks", 3), ("selective", None), ("full", None)]:
        loss, g, b = M.lm_loss_and_grads(model, x, y, M.recompute_plan(model, strategy, k))
        assert loss == loss0
        assert M.max_abs_difference(g0, g) <= 1e-6 * max(float(v.abs().max())
                                                          for v in g0.values())
        assert b < b0
    assert "forward" not in model.layers[0].__dict__  # restored


def test_saved_bytes_decrease_monotonically_with_checkpointed_blocks():
    model = _model(torch.float32)
    x, y = _batch(1)
    sizes = [M.activation_bytes(model, x, y, M.recompute_plan(model, "blocks", k))
             for k in range(CFG.n_layers + 1)]
    assert all(a > b for a, b in zip(sizes, sizes[1:]))
    full = M.activation_bytes(model, x, y, M.recompute_plan(model, "full"))
    assert full == sizes[-1]
    sel = M.activation_bytes(model, x, y, M.recompute_plan(model, "selective"))
    assert full < sel < sizes[0]


def test_checkpoint_keeps_inputs_only():
    model = _model(torch.float32)
    x, y = _batch(2)
    with M.checkpointed(M.recompute_plan(model, "full")), M.SavedTensorLog(model) as log:
        model(x)
    kinds = log.by_kind()
    # one kept input (the residual stream) per block; cos/sin are views of buffers
    assert kinds["checkpoint input"] == CFG.n_layers


def test_recompute_plan_and_checkpointed_validation():
    model = _model(torch.float32)
    assert M.recompute_plan(model, "none") == []
    assert len(M.recompute_plan(model, "blocks", 2)) == 2
    with pytest.raises(ValueError, match="strategy"):
        M.recompute_plan(model, "half")
    with pytest.raises(ValueError, match="k must be"):
        M.recompute_plan(model, "blocks", CFG.n_layers + 1)
    with pytest.raises(ValueError, match="only used"):
        M.recompute_plan(model, "full", 2)
    with pytest.raises(TypeError, match="layers"):
        M.recompute_plan(torch.nn.Linear(2, 2), "full")
    with pytest.raises(ValueError, match="twice"):
        with M.checkpointed([model.layers[0], model.layers[0]]):
            pass
    with pytest.raises(TypeError, match="nn.Modules"):
        with M.checkpointed(["layer"]):
            pass
    with pytest.raises(TypeError, match="nn.Module"):
        M.SavedTensorLog("model")
