"""Recurrent networks written out, gradients through time measured, and a recall task on which
a recurrent network and one attention layer are compared.

Book: seed-112.

* :func:`rnn_forward` — the Elman RNN ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``
  one step at a time, with the weights of a ``torch.nn.RNN`` layer (equal to it, tested);
  :func:`lstm_forward` — the LSTM's gates written out, equal to ``torch.nn.LSTM``.
* :func:`bptt_gradient_norms` — backpropagation through time: the loss reads only the last
  hidden state, and the norm of its gradient with respect to every earlier hidden state is
  logged against the distance. Each step back multiplies by ``diag(1 - h_t^2) W_hh`` (the
  Jacobian of one step), so the norm shrinks roughly geometrically when that product's gain
  is below 1 (vanishing) and can grow when the recurrent weight is large (exploding)
  (Bengio et al. 1994; Pascanu et al. 2013).
* :func:`recall_batch`, :class:`RecallConfig`, :func:`train_recall` — the "remember the first
  token" task: a key token, ``distance - 1`` distractors, and the model must name the key at
  the last position. A recurrent model (``torch.nn.RNN``/``LSTM``, the modules checked above)
  must carry the key through ``distance`` steps; one causal attention layer reads it directly.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.runs import Run, Stopwatch, TrainLog, check_choice, check_int, check_positive


def _rnn_weights(layer: nn.Module, gates: int):
    if layer.num_layers != 1 or layer.bidirectional or not layer.batch_first:
        raise ValueError("expected a single-layer, unidirectional, batch_first recurrent module")
    W_ih, W_hh = layer.weight_ih_l0, layer.weight_hh_l0
    b_ih, b_hh = layer.bias_ih_l0, layer.bias_hh_l0
    if W_hh.shape[0] != gates * layer.hidden_size:
        raise ValueError("unexpected weight shape for this kind of recurrent module")
    return W_ih, W_hh, b_ih, b_hh


def _check_seq(x, input_size: int) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != input_size:
        raise ValueError(f"x must be a (batch, time, {input_size}) tensor, got "
                         f"{tuple(getattr(x, 'shape', ()))}")


def rnn_forward(layer: nn.RNN, x: torch.Tensor, h0: torch.Tensor | None = None,
                keep_graph_states: bool = False):
    """Run ``layer``'s weights step by step over ``x`` (B, T, input): returns ``(out, states)``
    with ``out`` (B, T, hidden) as ``torch.nn.RNN`` returns it and ``states`` the list of
    T + 1 hidden states h_0 … h_T (each with ``retain_grad()`` when ``keep_graph_states``)."""
    if not isinstance(layer, nn.RNN):
        raise TypeError(f"layer must be a torch.nn.RNN, got {type(layer).__name__}")
    _check_seq(x, layer.input_size)
    W_ih, W_hh, b_ih, b_hh = _rnn_weights(layer, 1)
    act = torch.tanh if layer.nonlinearity == "tanh" else torch.relu
    h = x.new_zeros(x.shape[0], layer.hidden_size) if h0 is None else h0
    states = [h]
    for t in range(x.shape[1]):
        h = act(x[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
        if keep_graph_states:
            h.retain_grad()
        states.append(h)
    return torch.stack(states[1:], 1), states


def lstm_forward(layer: nn.LSTM, x: torch.Tensor):
    """The LSTM step by step with ``layer``'s weights (gate order i, f, g, o as torch stores
    them): ``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)``. Returns ``out`` (B, T, H)."""
    if not isinstance(layer, nn.LSTM):
        raise TypeError(f"layer must be a torch.nn.LSTM, got {type(layer).__name__}")
    _check_seq(x, layer.input_size)
    W_ih, W_hh, b_ih, b_hh = _rnn_weights(layer, 4)
    H = layer.hidden_size
    h = x.new_zeros(x.shape[0], H)
    c = x.new_zeros(x.shape[0], H)
    outs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh
        i, f, g, o = torch.sigmoid(z[:, :H]), torch.sigmoid(z[:, H:2 * H]), \
            torch.tanh(z[:, 2 * H:3 * H]), torch.sigmoid(z[:, 3 * H:])
        c = f * c + i * g
        h = o * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs, 1)


def scaled_rnn(input_size: int, hidden_size: int, gain: float, generator: torch.Generator,
               nonlinearity: str = "tanh") -> nn.RNN:
    """A ``torch.nn.RNN`` whose recurrent matrix is a random orthogonal matrix times ``gain``
    (so every singular value of ``W_hh`` equals ``gain``), zero biases, input weights
    N(0, 1/input_size)."""
    if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not gain > 0:
        raise ValueError(f"gain must be a number > 0, got {gain!r}")
    layer = nn.RNN(input_size, hidden_size, batch_first=True, nonlinearity=nonlinearity)
    q, r = torch.linalg.qr(torch.randn(hidden_size, hidden_size, generator=generator))
    q = q * torch.sign(torch.diagonal(r))
    with torch.no_grad():
        layer.weight_hh_l0.copy_(gain * q)
        layer.weight_ih_l0.copy_(torch.randn(hidden_size, input_size, generator=generator)
                                 / input_size ** 0.5)
        layer.bias_ih_l0.zero_()
        layer.bias_hh_l0.zero_()
    return layer


def bptt_gradient_norms(layer: nn.RNN, x: torch.Tensor, readout: torch.Tensor) -> np.ndarray:
    """``||dL/dh_{T-k}||`` for k = 0 … T-1 (mean over the batch), where the loss
    ``L = sum_b readout . h_T`` reads only the last hidden state. Entry k is the gradient that
    reaches a state k steps before the loss."""
    if readout.shape != (layer.hidden_size,):
        raise ValueError(f"readout must have shape ({layer.hidden_size},), got "
                         f"{tuple(readout.shape)}")
    _, states = rnn_forward(layer, x, keep_graph_states=True)
    loss = (states[-1] @ readout).sum()
    loss.backward()
    T = x.shape[1]
    norms = [float(states[T - k].grad.norm(dim=-1).mean()) for k in range(T)]
    layer.zero_grad(set_to_none=True)
    return np.array(norms)


# ----------------------------------------------------------------------------- the recall task


def recall_batch(batch: int, distance: int, vocab: int, generator: torch.Generator):
    """``(x (batch, distance + 1), y (batch,))``: a key token in ``1 … vocab-1`` at position 0,
    then ``distance`` distractor tokens drawn from the same symbols; the target is the key,
    to be named at the last position, ``distance`` steps after it was seen."""
    if batch < 1 or distance < 1 or vocab < 3:
        raise ValueError(f"need batch >= 1, distance >= 1, vocab >= 3, got {batch}, "
                         f"{distance}, {vocab}")
    x = torch.randint(1, vocab, (batch, distance + 1), generator=generator)
    return x, x[:, 0].clone()


@dataclasses.dataclass
class RecallConfig:
    """One training run on the recall task.

    ``model``: "rnn" (Elman, tanh), "lstm", or "attention" (one causal self-attention layer
    with learned positions); ``distance``: steps between the key and the question (1–200);
    ``vocab``: symbols incl. an unused 0 (chance accuracy 1/(vocab-1)); ``hidden``: width of
    the state / model (16–128); ``steps``, ``batch``, ``lr``: Adam training budget.
    """

    model: str = "rnn"
    distance: int = 16
    vocab: int = 9
    hidden: int = 32
    steps: int = 300
    batch: int = 64
    lr: float = 3e-3
    eval_size: int = 512
    seed: int = 0

    def __post_init__(self):
        check_choice(self, "model", ("rnn", "lstm", "attention"))
        check_int(self, "distance", "hidden", "steps", "batch", "eval_size")
        check_int(self, "vocab", minimum=3)
        check_positive(self, "lr")
        check_int(self, "seed", minimum=0)


class _Recurrent(nn.Module):
    def __init__(self, cfg: RecallConfig):
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab, cfg.hidden)
        cls = nn.RNN if cfg.model == "rnn" else nn.LSTM
        self.core = cls(cfg.hidden, cfg.hidden, batch_first=True)
        self.head = nn.Linear(cfg.hidden, cfg.vocab)

    def forward(self, x):
        out, _ = self.core(self.embed(x))
        return self.head(out[:, -1])


class _OneAttention(nn.Module):
    def __init__(self, cfg: RecallConfig):
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab, cfg.hidden)
        self.pos = nn.Parameter(torch.randn(cfg.distance + 1, cfg.hidden) * 0.5)
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden)
        self.head = nn.Linear(2 * cfg.hidden, cfg.vocab)

    def forward(self, x):
        h = self.embed(x) + self.pos[: x.shape[1]]
        q, k, v = self.qkv(h).chunk(3, -1)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.head(torch.cat([att[:, -1], h[:, -1]], -1))


@dataclasses.dataclass
class RecallRun(Run):
    """A trained recall model and its accuracy on fresh sequences (``accuracy``)."""

    model: nn.Module
    accuracy: float


def train_recall(cfg: RecallConfig, progress: bool = False) -> RecallRun:
    """Train ``cfg.model`` with Adam on fresh batches; log the loss every 25 steps; evaluate
    the accuracy on ``cfg.eval_size`` fresh sequences."""
    import lib

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = _OneAttention(cfg) if cfg.model == "attention" else _Recurrent(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    log = TrainLog()
    with Stopwatch(log):
        for step in lib.progress(range(cfg.steps), enabled=progress, desc=cfg.model):
            x, y = recall_batch(cfg.batch, cfg.distance, cfg.vocab, gen)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if step % 25 == 0 or step == cfg.steps - 1:
                log.record_update(step, loss=loss.item())
        eval_gen = torch.Generator().manual_seed(10_000 + cfg.seed)
        x, y = recall_batch(cfg.eval_size, cfg.distance, cfg.vocab, eval_gen)
        with torch.no_grad():
            acc = float((model(x).argmax(-1) == y).float().mean())
    return RecallRun(cfg, log, model, acc)
