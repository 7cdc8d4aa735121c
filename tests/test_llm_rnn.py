"""lib.llm.rnn: the written-out RNN and LSTM equal torch's modules; BPTT gradient norms decay
for a small recurrent gain and grow for a large one; the recall task and its training run."""
import numpy as np
import pytest
import torch

from lib.llm import rnn as R


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_equals_torch(nonlinearity):
    torch.manual_seed(0)
    layer = torch.nn.RNN(5, 7, batch_first=True, nonlinearity=nonlinearity).double()
    x = torch.randn(3, 9, 5, dtype=torch.float64)
    h0 = torch.randn(3, 7, dtype=torch.float64)
    ref, h_ref = layer(x, h0[None])
    out, states = R.rnn_forward(layer, x, h0)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(states[-1], h_ref[0])
    torch.testing.assert_close(R.rnn_forward(layer, x)[0], layer(x)[0])


def test_lstm_equals_torch():
    torch.manual_seed(1)
    layer = torch.nn.LSTM(4, 6, batch_first=True).double()
    x = torch.randn(2, 11, 4, dtype=torch.float64)
    torch.testing.assert_close(R.lstm_forward(layer, x), layer(x)[0])


def test_bptt_norms_decay_and_grow():
    g = torch.Generator().manual_seed(0)
    small = R.scaled_rnn(8, 32, 0.5, g)
    x = torch.randn(4, 30, 8, generator=g) * 0.1
    n = R.bptt_gradient_norms(small, x, torch.randn(32, generator=g))
    assert n.shape == (30,) and np.all(np.diff(np.log(n)) < 0)
    big = R.scaled_rnn(8, 32, 3.0, g)
    n = R.bptt_gradient_norms(big, x, torch.randn(32, generator=g))
    assert n[-1] > 100 * n[0]
    w = big.weight_hh_l0.detach()
    torch.testing.assert_close(torch.linalg.svdvals(w), torch.full((32,), 3.0))


def test_recall_task_and_training():
    g = torch.Generator().manual_seed(0)
    x, y = R.recall_batch(5, 3, 6, g)
    assert x.shape == (5, 4) and torch.equal(y, x[:, 0]) and int(x.min()) >= 1
    run = R.train_recall(R.RecallConfig(model="attention", distance=6, steps=150))
    assert run.accuracy > 0.9 and len(run.log.updates) >= 2
    run = R.train_recall(R.RecallConfig(model="rnn", distance=2, steps=150))
    assert run.accuracy > 0.9


def test_validation_errors():
    with pytest.raises(ValueError, match="model"):
        R.RecallConfig(model="gru")
    with pytest.raises(ValueError, match="distance"):
        R.RecallConfig(distance=0)
    with pytest.raises(ValueError, match="vocab"):
        R.recall_batch(2, 2, 2, torch.Generator())
    with pytest.raises(ValueError, match="gain"):
        R.scaled_rnn(2, 2, 0.0, torch.Generator())
    layer = torch.nn.RNN(3, 4, batch_first=True)
    with pytest.raises(ValueError, match="batch, time, 3"):
        R.rnn_forward(layer, torch.zeros(2, 3))
    with pytest.raises(TypeError, match="torch.nn.RNN"):
        R.rnn_forward(torch.nn.LSTM(3, 4, batch_first=True), torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="single-layer"):
        R.rnn_forward(torch.nn.RNN(3, 4), torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="readout"):
        R.bptt_gradient_norms(layer, torch.zeros(1, 2, 3), torch.zeros(5))
