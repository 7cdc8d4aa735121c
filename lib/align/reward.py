"""The reward model of RLHF: the supervised model with its LM head replaced by one number.

A reward model reads a prompt and a completion and returns a scalar: how good the completion
is. InstructGPT's recipe (Ouyang et al. 2022; Stiennon et al. 2020 before it) builds it from the
supervised model itself:

* **structure** (:class:`RewardModel`): the SFT model's decoder (embedding, blocks, final norm)
  and a linear *reward head* ``d_model -> 1`` in place of the LM head. The head has no bias: the
  Bradley–Terry loss sees only differences of scores, so a constant offset is never learned
  (the same layout as ``transformers``' ``LlamaForSequenceClassification``, whose ``score``
  layer is bias-free too). :meth:`RewardModel.from_lm` copies the backbone and draws the head;
* **input and output**: ``prompt + completion`` token ids in, a score at *every* position out
  (:meth:`RewardModel.token_scores`); the reward is the score at the last real token
  (:func:`last_token_index`), which sees the whole sequence through causal attention. Left and
  right padding give the same rewards (the attention mask hides pads, positions count real
  tokens only);
* **loss**: Bradley–Terry, ``−log σ(r_w − r_l)`` for a chosen ``y_w`` and a rejected ``y_l``
  (:func:`lib.objectives.bradley_terry_loss`; gradient ``σ(Δ) − 1`` in the margin
  ``Δ = r_w − r_l``);
* **training** (:func:`train_reward_model`) on preference pairs, **evaluation**
  (:func:`pair_metrics`: pairwise accuracy, ROC AUC of chosen vs rejected scores, reliability of
  ``σ(Δ)``), and **normalisation**: the mean and standard deviation of the scores over a
  reference set of completions, kept in the model (:meth:`RewardModel.set_normalization`) so
  that a policy-optimisation stage sees rewards of mean 0 and spread 1 at its start.

For Part 8's view of the LM as an agent, :func:`kl_penalized_rewards` builds the per-token
reward of RLHF (the reward model's score at the last token minus a per-token KL penalty) and
:func:`lm_episode` runs one episode (state = prefix, action = token) on a real prompt.

``python -m lib.align.reward --no-progress`` makes the shipped ``data/checkpoints/reward-model``
(the cold start trained on verifier-labelled pairs of its own answers; :func:`make_reward_model`).

Book: seed-76, seed-78, seed-79, seed-80, seed-81.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import pathlib
import sys
import time
from typing import Any

import numpy as np
import torch

from lib.objectives import bradley_terry_loss
from lib.runs import Run, Stopwatch, TrainLog, check_int, check_positive, check_range

PADDINGS = ("right", "left")
#: Name of the shipped reward model (``data/checkpoints/reward-model``).
REWARD_MODEL = "reward-model"


# ----------------------------------------------------------------------------- the model
def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B,) index of the last real token of each row of a (B, T) 0/1 ``attention_mask``: the
    largest position whose mask is 1 (``T − 1`` under left padding, ``length − 1`` under right
    padding)."""
    if not isinstance(attention_mask, torch.Tensor) or attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must be a (batch, seq_len) tensor, got "
                         f"{getattr(attention_mask, 'shape', type(attention_mask).__name__)}")
    m = attention_mask.long()
    if ((m != 0) & (m != 1)).any():
        raise ValueError("attention_mask must hold only 0 and 1")
    if (m.sum(1) == 0).any():
        raise ValueError("every row of attention_mask needs at least one real token (a 1)")
    pos = torch.arange(m.shape[1], device=m.device)
    return (pos * m).argmax(1)


class RewardModel(torch.nn.Module):
    """A TinyLM backbone (its LM head unused) and a bias-free linear reward head (module
    docstring). ``reward_mean`` / ``reward_std`` (buffers, 0 and 1 until
    :meth:`set_normalization`) turn raw scores into normalised rewards (:meth:`normalize`).
    ``bias=True`` adds a bias to the head (a critic may use one; the reward model does not)."""

    def __init__(self, lm, bias: bool = False):
        super().__init__()
        from lib.llm.model import TinyLM

        if not isinstance(lm, TinyLM):
            raise TypeError(f"RewardModel needs a TinyLM backbone, got {type(lm).__name__}")
        self.lm = lm
        self.head = torch.nn.Linear(lm.config.d_model, 1, bias=bool(bias))
        self.register_buffer("reward_mean", torch.zeros(()))
        self.register_buffer("reward_std", torch.ones(()))

    @classmethod
    def from_lm(cls, lm, seed: int = 0, head_std: float | None = None) -> "RewardModel":
        """A reward model whose backbone is a *copy* of ``lm`` (the SFT model is left untouched)
        and whose head is drawn from N(0, ``head_std``²) with ``seed`` (default std: the model's
        ``init_std``, as ``transformers`` initialises its ``score`` layer)."""
        rm = cls(copy.deepcopy(lm))
        std = lm.config.init_std if head_std is None else float(head_std)
        if not std >= 0:
            raise ValueError(f"head_std must be >= 0, got {head_std!r}")
        g = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            rm.head.weight.copy_(torch.randn(rm.head.weight.shape, generator=g) * std)
        return rm.to(lm.device).train(lm.training)

    @property
    def config(self):
        return self.lm.config

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def token_scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) raw score at every position (the head on the final normed hidden states)."""
        h = self.lm(input_ids, attention_mask=attention_mask, output_hidden_states=True).last_hidden_state
        return self.head(h)[..., 0].float()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) raw reward: the score at each row's last real token (:func:`last_token_index`;
        without a mask every token is real and it is the last position)."""
        s = self.token_scores(input_ids, attention_mask)
        if attention_mask is None:
            return s[:, -1]
        return s.gather(1, last_token_index(attention_mask).to(s.device)[:, None])[:, 0]

    def normalize(self, scores: torch.Tensor) -> torch.Tensor:
        """``(scores − reward_mean) / reward_std``."""
        return (scores - self.reward_mean) / self.reward_std

    @torch.no_grad()
    def set_normalization(self, scores) -> dict:
        """Store the mean and standard deviation of raw ``scores`` (a reference set of
        completions, e.g. the SFT model's own samples) for :meth:`normalize`; returns them."""
        s = torch.as_tensor(scores, dtype=torch.float32).flatten()
        if s.numel() < 2 or not torch.isfinite(s).all():
            raise ValueError("need at least two finite scores to normalise against")
        std = float(s.std())
        if not std > 0:
            raise ValueError("the reference scores are all equal: no spread to normalise by")
        self.reward_mean.fill_(float(s.mean()))
        self.reward_std.fill_(std)
        return {"mean": float(s.mean()), "std": std}


def parameter_counts(rm: RewardModel) -> dict:
    """Parameters of the reward model by part: ``backbone`` (embedding, blocks, final norm),
    ``head`` (d_model), ``total``; and ``lm_head_unused``: the SFT model's LM-head parameters the
    reward model does not use (0 when the head was tied to the embedding: it *is* the embedding)."""
    if not isinstance(rm, RewardModel):
        raise TypeError(f"expected a RewardModel, got {type(rm).__name__}")
    tied = rm.config.tie_embeddings
    backbone = sum(p.numel() for n, p in rm.lm.named_parameters() if not n.startswith("lm_head"))
    head = sum(p.numel() for p in rm.head.parameters())
    return {"backbone": backbone, "head": head, "total": backbone + head,
            "lm_head_unused": 0 if tied else rm.lm.lm_head.weight.numel()}


# ----------------------------------------------------------------------------- batches of pairs
def _triples(pairs):
    from lib.align.dpo import _triples as triples

    return triples(pairs)


def pad_sequences(seqs, pad_id: int, padding: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, attention_mask)`` (B, T) of token lists padded with ``pad_id`` on the right or the
    left (``padding``)."""
    from lib.llm.generate import left_pad

    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    if padding == "left":
        return left_pad(seqs, pad_id)
    if len(seqs) == 0 or max(len(s) for s in seqs) == 0:
        raise ValueError("need at least one non-empty sequence")
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), int(pad_id), dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.as_tensor(list(s), dtype=torch.long)
        mask[i, :len(s)] = 1
    return ids, mask


def pair_sequences(pairs, pad_id: int, padding: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, attention_mask)``, each (2B, T): the B chosen sequences (prompt + completion), then
    the B rejected ones, padded (:func:`pad_sequences`)."""
    tr = _triples(pairs)
    return pad_sequences([p + c for p, c, _ in tr] + [p + r for p, _, r in tr], pad_id, padding)


@torch.no_grad()
def pair_scores(rm: RewardModel, pairs, pad_id: int, batch_size: int = 64, normalized: bool = False) -> torch.Tensor:
    """(N, 2) rewards ``[chosen, rejected]`` of every pair (eval mode, no gradients)."""
    tr = _triples(pairs)
    was = rm.training
    rm.eval()
    out = []
    for s in range(0, len(tr), batch_size):
        ids, attn = pair_sequences(tr[s:s + batch_size], pad_id)
        r = rm(ids.to(rm.device), attn.to(rm.device))
        out.append((rm.normalize(r) if normalized else r).view(2, -1).T)
    rm.train(was)
    return torch.cat(out).cpu()


@torch.no_grad()
def sequence_scores(rm: RewardModel, seqs, pad_id: int, batch_size: int = 64, normalized: bool = False) -> torch.Tensor:
    """(N,) rewards of token lists (prompt + completion each)."""
    if len(seqs) == 0:
        raise ValueError("need at least one sequence")
    was = rm.training
    rm.eval()
    out = []
    for s in range(0, len(seqs), batch_size):
        ids, attn = pad_sequences(seqs[s:s + batch_size], pad_id)
        r = rm(ids.to(rm.device), attn.to(rm.device))
        out.append(rm.normalize(r) if normalized else r)
    rm.train(was)
    return torch.cat(out).cpu()


# ----------------------------------------------------------------------------- evaluation
def reliability(prob, outcome, n_bins: int = 5) -> dict:
    """Calibration of predicted probabilities ``prob`` of binary ``outcome`` (arrays (N,)):
    equal-width bins on [0, 1]; per non-empty bin the mean prediction ``predicted``, the observed
    frequency ``observed`` and the ``count``; ``ece`` = the count-weighted mean |observed −
    predicted| (expected calibration error)."""
    p, y = np.asarray(prob, float).ravel(), np.asarray(outcome, float).ravel()
    if p.shape != y.shape or p.size == 0:
        raise ValueError(f"prob and outcome must be non-empty and of one length, got {p.shape}, {y.shape}")
    if ((p < 0) | (p > 1)).any() or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("prob must lie in [0, 1] and outcome be 0/1")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be an int >= 1, got {n_bins!r}")
    b = np.minimum((p * n_bins).astype(int), n_bins - 1)
    pred, obs, cnt = [], [], []
    for k in range(n_bins):
        sel = b == k
        if sel.any():
            pred.append(float(p[sel].mean()))
            obs.append(float(y[sel].mean()))
            cnt.append(int(sel.sum()))
    cnt_a = np.asarray(cnt)
    ece = float((cnt_a * np.abs(np.asarray(obs) - np.asarray(pred))).sum() / cnt_a.sum())
    return {"predicted": pred, "observed": obs, "count": cnt, "ece": ece}


def pair_metrics(scores, n_bins: int = 5, seed: int = 0) -> dict:
    """How well (N, 2) scores ``[chosen, rejected]`` rank the pairs.

    ``accuracy``: share of pairs with ``r_w > r_l`` (a tie counts ½); ``auc``: ROC AUC
    (scikit-learn) of all chosen scores against all rejected scores pooled over prompts (is a
    random chosen answer scored above a random rejected one?); ``margin``: mean ``r_w − r_l``;
    ``loss``: mean Bradley–Terry loss; ``reliability``: :func:`reliability` of ``σ(r_a − r_b)``
    against "a is the chosen one", with each pair's order (a, b) drawn at random (``seed``) so
    that both outcomes occur.
    """
    from sklearn.metrics import roc_auc_score

    s = torch.as_tensor(scores, dtype=torch.float64)
    if s.dim() != 2 or s.shape[1] != 2 or s.shape[0] < 1:
        raise ValueError(f"scores must be (N >= 1, 2) [chosen, rejected], got {tuple(s.shape)}")
    d = (s[:, 0] - s[:, 1]).numpy()
    acc = float(((np.sign(d) + 1) / 2).mean())
    y = np.r_[np.ones(len(d)), np.zeros(len(d))]
    auc = float(roc_auc_score(y, np.r_[s[:, 0].numpy(), s[:, 1].numpy()]))
    flip = np.random.default_rng(seed).random(len(d)) < 0.5
    margin_ab = np.where(flip, -d, d)
    prob = 1 / (1 + np.exp(-margin_ab))
    rel = reliability(prob, (~flip).astype(float), n_bins)
    loss = float(bradley_terry_loss(s[:, 0], s[:, 1]))
    return {"accuracy": acc, "auc": auc, "margin": float(d.mean()), "loss": loss, "reliability": rel}


# ----------------------------------------------------------------------------- training
@dataclasses.dataclass
class RewardConfig:
    """Hyperparameters of :func:`train_reward_model` (and the seed).

    steps: updates; batch_size: pairs per update (epochs over the pairs, reshuffled each time;
    InstructGPT compared all K·(K−1)/2 answers of a prompt in one batch, the book's pairs have
    K = 2); lr: AdamW peak learning rate of the backbone (1e-5–3e-4 for the tiny model;
    InstructGPT used ~9e-6 for 6B); head_lr: learning rate of the fresh head (typically 3–30×
    ``lr``, it starts from random); weight_decay: AdamW's (0–0.1); warmup_steps: linear warm-up,
    then cosine decay to ``min_lr_ratio`` of the peak; max_grad_norm: gradient clipping;
    center_weight: weight of ``mean((r_w + r_l)²)``, which keeps the scores near 0 (TRL's
    ``center_rewards_coefficient``, ~0.01; 0 = off); eval_every: updates between evaluations;
    head_std: std of the head's initial weights (None: the model's ``init_std``); seed: the head's
    draw and the batch order.
    """

    steps: int = 150
    batch_size: int = 32
    lr: float = 1e-4
    head_lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 10
    min_lr_ratio: float = 0.1
    max_grad_norm: float = 1.0
    center_weight: float = 0.0
    eval_every: int = 25
    head_std: float | None = None
    seed: int = 0

    def __post_init__(self):
        check_positive(self, "lr", "head_lr", "max_grad_norm")
        check_int(self, "steps", "batch_size", "eval_every")
        check_int(self, "warmup_steps", "seed", minimum=0)
        check_range(self, "weight_decay", 0.0, 1.0)
        check_range(self, "min_lr_ratio", 0.0, 1.0)
        check_range(self, "center_weight", 0.0, 10.0)
        if self.head_std is not None:
            check_range(self, "head_std", 0.0, 10.0)
        if self.warmup_steps > self.steps:
            raise ValueError(f"RewardConfig.warmup_steps must be <= steps ({self.steps}), got {self.warmup_steps}")


@dataclasses.dataclass
class RewardRun(Run):
    """A finished :func:`train_reward_model`: the trained ``model`` (a :class:`RewardModel`) and
    ``evals`` (one dict per evaluation on the evaluation pairs: step, accuracy, auc, margin,
    loss). ``log.eval_returns`` is the evaluation pairs' accuracy; ``log.updates`` holds each
    update's loss, batch accuracy, margin, mean score, gradient norm and learning rate."""

    model: Any = None
    evals: list = dataclasses.field(default_factory=list)


def batch_loss(rm: RewardModel, pairs, pad_id: int, center_weight: float = 0.0) -> tuple[torch.Tensor, dict]:
    """The Bradley–Terry loss of one batch of pairs (plus ``center_weight · mean((r_w + r_l)²)``)
    and its diagnostics."""
    ids, attn = pair_sequences(pairs, pad_id)
    r = rm(ids.to(rm.device), attn.to(rm.device))
    B = r.shape[0] // 2
    rw, rl = r[:B], r[B:]
    bt = bradley_terry_loss(rw, rl)
    loss = bt + center_weight * ((rw + rl) ** 2).mean() if center_weight > 0 else bt
    with torch.no_grad():
        d = rw - rl
        stats = {"loss": float(loss), "bt_loss": float(bt), "accuracy": float(((torch.sign(d) + 1) / 2).mean()),
                 "margin": float(d.mean()), "mean_score": float(r.mean())}
    return loss, stats


def train_reward_model(cfg: RewardConfig, pairs, pad_id: int, model=None, eval_pairs=None,
                       progress: bool = False) -> RewardRun:
    """Train a reward model on preference ``pairs`` with ``cfg`` (Bradley–Terry loss).

    ``model``: a :class:`RewardModel` (trained further, as a copy), a TinyLM or a checkpoint name
    (default the cold start ``tiny-lm-arith-sft``; the head is drawn by
    :meth:`RewardModel.from_lm` with ``cfg.seed``). ``eval_pairs`` (optional) are scored at the
    start and every ``cfg.eval_every`` updates (:func:`pair_metrics`). Returns a
    :class:`RewardRun`.
    """
    from lib.llm.checkpoint import load_model
    from lib.llm.train import lr_at

    if not isinstance(cfg, RewardConfig):
        raise TypeError(f"cfg must be a RewardConfig, got {type(cfg).__name__}")
    tr = _triples(pairs)
    if isinstance(model, RewardModel):
        if model.head.bias is not None:
            raise ValueError("train a bias-free RewardModel (the Bradley-Terry loss cannot see a bias)")
        rm = copy.deepcopy(model)
    else:
        if model is None or isinstance(model, (str, pathlib.Path)):
            from lib.align.sft import COLD_START

            model = load_model(model or COLD_START)
        rm = RewardModel.from_lm(model, seed=cfg.seed, head_std=cfg.head_std)
    rm.train()
    log = TrainLog()
    run = RewardRun(cfg, log, rm)
    head = [rm.head.weight]
    body = [p for n, p in rm.named_parameters() if not n.startswith("head")]
    opt = torch.optim.AdamW([{"params": body, "lr": cfg.lr, "peak": cfg.lr},
                             {"params": head, "lr": cfg.head_lr, "peak": cfg.head_lr}],
                            weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    order = np.array([], dtype=int)

    def do_eval(step):
        out = {}

        def ev():
            s = pair_scores(rm, eval_pairs, pad_id)
            out.update(pair_metrics(s, seed=cfg.seed))
            return ((torch.sign(s[:, 0] - s[:, 1]) + 1) / 2).numpy()

        log.record_eval(step, ev)
        run.evals.append({"step": step, **{k: out[k] for k in ("accuracy", "auc", "margin", "loss")}})

    it = range(cfg.steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="reward model", mininterval=1.0)
    with Stopwatch(log):
        if eval_pairs is not None:
            do_eval(0)
        for step in it:
            if len(order) < cfg.batch_size:
                order = np.concatenate([order, rng.permutation(len(tr))])
            idx, order = order[:cfg.batch_size], order[cfg.batch_size:]
            frac = lr_at(step, max_lr=1.0, warmup_steps=cfg.warmup_steps, total_steps=cfg.steps,
                         min_lr_ratio=cfg.min_lr_ratio)
            for g in opt.param_groups:
                g["lr"] = g["peak"] * frac
            loss, stats = batch_loss(rm, [tr[i] for i in idx], pad_id, cfg.center_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(rm.parameters(), cfg.max_grad_norm)
            opt.step()
            log.record_update(step + 1, **stats, grad_norm=float(gn), lr=cfg.lr * frac)
            if eval_pairs is not None and ((step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps):
                do_eval(step + 1)
    rm.eval()
    return run


# ----------------------------------------------------------------------------- the LM as an agent
def kl_penalized_rewards(score: torch.Tensor, logp: torch.Tensor, ref_logp: torch.Tensor,
                         completion_mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """RLHF's per-token reward (B, n): ``−kl_coef · (log π − log π_ref)`` at every completion token
    (the k1 estimate of the KL, :func:`lib.objectives.kl_k1`) plus the sequence reward ``score``
    (B,) at each row's last completion token; 0 on masked positions."""
    from lib.objectives import kl_k1

    if not isinstance(score, torch.Tensor) or score.dim() != 1:
        raise ValueError(f"score must be a (B,) tensor, got {getattr(score, 'shape', type(score).__name__)}")
    if logp.shape != ref_logp.shape or logp.shape != completion_mask.shape or logp.dim() != 2 \
            or logp.shape[0] != score.shape[0]:
        raise ValueError(f"logp, ref_logp and completion_mask must share one (B={score.shape[0]}, n) shape, got "
                         f"{tuple(logp.shape)}, {tuple(ref_logp.shape)}, {tuple(completion_mask.shape)}")
    if isinstance(kl_coef, bool) or not isinstance(kl_coef, (int, float)) or not kl_coef >= 0:
        raise ValueError(f"kl_coef must be a number >= 0, got {kl_coef!r}")
    m = completion_mask.to(logp.dtype)
    if (m.sum(1) == 0).any():
        raise ValueError("every row needs at least one completion token")
    r = -kl_coef * kl_k1(logp, ref_logp) * m
    last = last_token_index(completion_mask.long())
    return r.scatter_add(1, last[:, None], score.to(r.dtype)[:, None])


@torch.no_grad()
def lm_episode(policy, reference, rm: RewardModel, prompt_ids, eos_id: int, max_new_tokens: int = 32,
               kl_coef: float = 0.05, generator: torch.Generator | None = None) -> dict:
    """One episode of the LM as an agent on one prompt: the policy samples a completion token by
    token (action = token, state = prompt + tokens so far), the reward model scores the finished
    sequence, the reference gives each token's log-prob for the KL penalty.

    Returns ``states`` (the prefix before each action, token lists), ``actions``, ``logp``
    (policy log-prob of each action), ``ref_logp``, ``rewards`` (:func:`kl_penalized_rewards`),
    ``score`` (raw reward-model score), ``return`` (sum of the rewards) and ``seq_logp`` (the
    completion's log-prob under the policy in one forward pass)."""
    from lib.llm.generate import completion_mask, generate, token_logprobs

    p = [int(t) for t in prompt_ids]
    if not p:
        raise ValueError("prompt_ids must be a non-empty token list")
    ids = torch.tensor([p], dtype=torch.long, device=policy.device)
    out = generate(policy, ids, max_new_tokens, do_sample=True, eos_token_id=eos_id, generator=generator)
    comp = out[:, len(p):]
    cm = completion_mask(comp, eos_id)
    n = int(cm.sum())
    out, comp, cm = out[:, :len(p) + n], comp[:, :n], cm[:, :n]
    attn = torch.ones_like(out)
    logp = token_logprobs(policy, out, attn, len(p))
    ref_logp = token_logprobs(reference, out, attn, len(p))
    score = rm(out)
    rewards = kl_penalized_rewards(score, logp, ref_logp, cm, kl_coef)
    seq = policy(out).logits[:, len(p) - 1:-1].float().log_softmax(-1)
    seq_logp = seq.gather(-1, comp[..., None])[..., 0].sum()
    actions = comp[0].tolist()
    return {"states": [p + actions[:t] for t in range(n)], "actions": actions, "logp": logp[0],
            "ref_logp": ref_logp[0], "rewards": rewards[0], "score": float(score[0]),
            "return": float(rewards.sum()), "seq_logp": float(seq_logp)}


# ----------------------------------------------------------------------------- save and load
def save_reward_model(rm: RewardModel, folder, meta: dict | None = None) -> pathlib.Path:
    """Write ``model.safetensors`` (backbone under ``lm.``, ``head.weight``, the two normalisation
    buffers) and ``meta.json`` (``config``: the backbone's LMConfig fields, ``normalization``,
    ``weights_sha256`` and ``meta``) into ``folder``."""
    from safetensors.torch import save_file

    from lib.llm.checkpoint import file_sha256, state_dict_for_saving

    if not isinstance(rm, RewardModel):
        raise TypeError(f"expected a RewardModel, got {type(rm).__name__}")
    if rm.head.bias is not None:
        raise ValueError("save_reward_model saves bias-free reward heads only")
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sd = {"lm." + k: v for k, v in state_dict_for_saving(rm.lm).items()}
    sd.update({"head.weight": rm.head.weight.detach().cpu().contiguous(),
               "reward_mean": rm.reward_mean.detach().cpu().reshape(1), "reward_std": rm.reward_std.detach().cpu().reshape(1)})
    save_file(sd, str(folder / "model.safetensors"), metadata={"format": "pt", "kind": "reward-model"})
    meta = dict(meta or {})
    meta["config"] = rm.config.to_dict()
    meta["kind"] = "reward-model"
    meta["normalization"] = {"mean": float(rm.reward_mean), "std": float(rm.reward_std)}
    meta["weights_sha256"] = file_sha256(folder / "model.safetensors")
    (folder / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return folder


def load_reward_model(name=REWARD_MODEL, device=None, with_meta: bool = False):
    """The :class:`RewardModel` saved by :func:`save_reward_model` in a folder or under a shipped
    name (default ``reward-model``), in eval mode; the weights must match the recorded
    ``weights_sha256``. With ``with_meta=True`` returns ``(model, meta)``."""
    from safetensors.torch import load_file

    from lib.llm.checkpoint import file_sha256, load_meta, resolve
    from lib.llm.config import LMConfig
    from lib.llm.model import TinyLM

    folder = resolve(name)
    meta = load_meta(folder)
    if meta.get("kind") != "reward-model":
        raise ValueError(f"{folder} holds no reward model (meta.json kind={meta.get('kind')!r}); "
                         "load language models with lib.llm.checkpoint.load_model")
    weights = folder / "model.safetensors"
    if file_sha256(weights) != meta.get("weights_sha256"):
        raise ValueError(f"{weights}: its SHA-256 is not the weights_sha256 that meta.json records")
    cfg = LMConfig.from_dict(meta["config"])
    sd = load_file(str(weights))
    rm = RewardModel(TinyLM(cfg))
    lm_sd = {k[3:]: v for k, v in sd.items() if k.startswith("lm.")}
    if cfg.tie_embeddings:
        lm_sd["lm_head.weight"] = lm_sd["embed_tokens.weight"]
    rm.lm.load_state_dict(lm_sd, strict=True)
    if cfg.tie_embeddings:
        rm.lm.lm_head.weight = rm.lm.embed_tokens.weight
    with torch.no_grad():
        rm.head.weight.copy_(sd["head.weight"])
        rm.reward_mean.fill_(float(sd["reward_mean"][0]))
        rm.reward_std.fill_(float(sd["reward_std"][0]))
    if device is not None:
        rm.to(device)
    rm.eval()
    return (rm, meta) if with_meta else rm


# ----------------------------------------------------------------------------- the shipped model
#: The shipped reward model's data: fresh two-step questions (generator seed), answers sampled
#: per question from the cold start, the share of the resulting pairs held out for evaluation.
RM_DATA_SEED, RM_N_PROMPTS, RM_GROUP_SIZE, RM_PER_PROMPT = 11, 1600, 8, 4
RM_CONFIG = RewardConfig(steps=400, batch_size=32, lr=1e-4, head_lr=1e-3, warmup_steps=20, eval_every=50, seed=0)
#: Reference set of the normalisation: the cold start's samples on the first N_NORM ``rl_train`` questions.
N_NORM, NORM_SAMPLES, NORM_SEED = 128, 4, 5


def fresh_questions(task, n: int, seed: int = RM_DATA_SEED) -> list:
    """``n`` two-step questions from the task's generator (``seed``) that are neither held-out
    questions nor prompts of the shipped DPO pairs (whose evaluation split evaluates the reward
    model), in generation order, without repeats."""
    from lib.align.preference import load_pairs
    from lib.data import fact_chain_problems

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    dpo_train, dpo_eval, _ = load_pairs()
    banned = {p.expression for p in task.held_out} | {p.problem.expression for p in dpo_train + dpo_eval}
    seen, probs = set(), []
    for p in fact_chain_problems(3 * n, seed=seed, n_ops=2):
        if p.expression not in banned and p.expression not in seen:
            seen.add(p.expression)
            probs.append(p)
        if len(probs) == n:
            return probs
    raise ValueError(f"only {len(probs)} fresh questions for n={n}")


@torch.no_grad()
def verifier_pairs(model, tokenizer, problems, group_size: int = RM_GROUP_SIZE, per_prompt: int = 4,
                   seed: int = RM_DATA_SEED, reference_chosen: bool = False, max_new_tokens: int = 32,
                   batch_size: int = 64) -> tuple[list, dict]:
    """Preference pairs of ``model``'s own answers judged by the verifier, several per prompt.

    ``group_size`` answers per problem (temperature 1, seeded); among a problem's distinct right
    answers R and distinct wrong ones W, up to ``per_prompt`` of the |R|·|W| (right ≻ wrong)
    combinations, drawn at random — InstructGPT's "all comparisons of a prompt" with a cap, where
    :func:`lib.align.preference.build_pairs` keeps one. With ``reference_chosen``, a problem the
    model never got right still gives pairs: its worked solution (the task's own text, as a human
    demonstration would be) ≻ each of its wrong answers. Returns ``(pairs, stats)``
    (``prompts``, ``answers``, ``right_share``, ``prompts_with_pairs``, ``reference_pairs``,
    ``pairs``)."""
    from lib.align.preference import PreferencePair, judged_groups
    from lib.align.tasks import completion_text

    if isinstance(per_prompt, bool) or not isinstance(per_prompt, int) or per_prompt < 1:
        raise ValueError(f"per_prompt must be an int >= 1, got {per_prompt!r}")
    probs = list(problems)
    if not probs:
        raise ValueError("need at least one problem")
    rng = np.random.default_rng(seed)
    pairs, n_right, with_pairs, n_ref = [], 0, 0, 0
    for g in judged_groups(model, tokenizer, probs, group_size, max_new_tokens, seed, batch_size):
        n_right += g.n_right
        right, wrong = g.right, g.wrong
        if not right and wrong and reference_chosen:
            text = completion_text(probs[g.index])
            ref_ids = tuple(tokenizer.encode(text)) + (tokenizer.eos_id,)
            right = [(ref_ids, tokenizer.decode(ref_ids, skip_special_tokens=True))]
            n_ref += min(per_prompt, len(wrong))
        if not right or not wrong:
            continue
        with_pairs += 1
        combos = [(a, b) for a in range(len(right)) for b in range(len(wrong))]
        for j in rng.permutation(len(combos))[:per_prompt]:
            cw, cl = right[combos[j][0]], wrong[combos[j][1]]
            pairs.append(PreferencePair(probs[g.index], g.prompt_ids, cw[0], cl[0], cw[1], cl[1]))
    stats = {"prompts": len(probs), "answers": len(probs) * group_size,
             "right_share": n_right / (len(probs) * group_size), "prompts_with_pairs": with_pairs,
             "reference_pairs": n_ref, "pairs": len(pairs)}
    return pairs, stats


@torch.no_grad()
def reference_scores(rm: RewardModel, model, tokenizer, problems, samples: int = NORM_SAMPLES,
                     seed: int = NORM_SEED, max_new_tokens: int = 32) -> torch.Tensor:
    """Raw rewards of ``samples`` answers per problem sampled from ``model`` (temperature 1, seeded):
    the reference set of the normalisation."""
    from lib.align.tasks import encode_prompts
    from lib.llm.generate import sample_groups

    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(int(seed))
    ids, attn, cmask, n = sample_groups(model, encode_prompts(tokenizer, problems), samples, max_new_tokens,
                                        tokenizer.eos_id, generator=gen, pad_id=tokenizer.pad_id)
    return rm(ids, sampled_attention_mask(attn, cmask, n))


def sampled_attention_mask(attention_mask: torch.Tensor, completion_mask: torch.Tensor, n_prompt: int) -> torch.Tensor:
    """The mask to score rows of :func:`lib.llm.generate.sample_groups` with: its prompt part
    (left padding 0) followed by the completion mask (1 up to and including the first EOS, 0 on
    the filler after it), so that the reward is read at the EOS (or at the last token of a
    completion cut at the length limit)."""
    if attention_mask.dim() != 2 or completion_mask.dim() != 2 or \
            attention_mask.shape[1] != n_prompt + completion_mask.shape[1] or \
            attention_mask.shape[0] != completion_mask.shape[0]:
        raise ValueError(f"need attention_mask (B, n_prompt + n) and completion_mask (B, n), got "
                         f"{tuple(attention_mask.shape)}, {tuple(completion_mask.shape)} with n_prompt={n_prompt}")
    return torch.cat([attention_mask[:, :n_prompt], completion_mask.to(attention_mask.dtype)], 1)


def make_reward_model(out=None, cfg: RewardConfig = RM_CONFIG, n_prompts: int = RM_N_PROMPTS,
                      progress: bool = True, command: str | None = None) -> dict:
    """Make ``data/checkpoints/reward-model``: :func:`verifier_pairs` of the cold start on
    ``n_prompts`` :func:`fresh_questions` (with worked solutions as the chosen answer where the
    model got none right), all for training, with ``cfg``; evaluated on the shipped DPO evaluation
    pairs (clean verifier labels, prompts never trained on); Part 4's training pairs are not used
    (they stay unseen, for RLAIF's labeller); normalised over the cold start's samples on
    ``rl_train`` questions (:func:`reference_scores`)."""
    from lib.align.preference import PAIRS_NAME, load_pairs
    from lib.align.sft import COLD_START
    from lib.align.tasks import chain_arithmetic_task
    from lib.llm.checkpoint import CHECKPOINT_DIR, load_model
    from lib.llm.tokenizer import load_tokenizer
    from lib.provenance import git_commit, machine, tree_dirty

    from lib import seed_everything

    out = pathlib.Path(out) if out is not None else CHECKPOINT_DIR / REWARD_MODEL
    torch.set_num_threads(1)
    seed_everything(cfg.seed)
    t0 = time.perf_counter()
    tok = load_tokenizer()
    task = chain_arithmetic_task()
    cold = load_model(COLD_START)
    fresh, stats = verifier_pairs(cold, tok, fresh_questions(task, n_prompts), per_prompt=RM_PER_PROMPT,
                                   reference_chosen=True)
    dpo_train, dpo_eval, _ = load_pairs()
    train = fresh                                   # Part 4's pairs stay unseen: the RLAIF judge labels them
    t_data = time.perf_counter() - t0
    run = train_reward_model(cfg, train, tok.pad_id, cold, eval_pairs=dpo_eval, progress=progress)
    rm = run.model
    rm.set_normalization(reference_scores(rm, cold, tok, task.rl_train[:N_NORM]))
    final = pair_metrics(pair_scores(rm, dpo_eval, tok.pad_id), seed=cfg.seed)
    fit = pair_metrics(pair_scores(rm, fresh[:200], tok.pad_id), seed=cfg.seed)
    meta = {"name": REWARD_MODEL, "seed": cfg.seed, "base": COLD_START, "train_config": dataclasses.asdict(cfg),
            "command": command or "python -m lib.align.reward", "machine": machine(), "commit": git_commit(),
            "tree_dirty": tree_dirty(), "task": task.describe(),
            "data": {"fresh_pairs": len(fresh), "fresh_stats": stats, "fresh_seed": RM_DATA_SEED,
                     "dpo_train_pairs": 0, "eval": f"{PAIRS_NAME} eval split ({len(dpo_eval)} pairs)",
                     "normalization_set": f"{N_NORM} rl_train questions x {NORM_SAMPLES} cold-start samples "
                                          f"(seed {NORM_SEED})"},
            "metrics": {"eval_accuracy": final["accuracy"], "eval_auc": final["auc"], "eval_margin": final["margin"],
                        "eval_loss": final["loss"], "eval_ece": final["reliability"]["ece"],
                        "train_subset_accuracy": fit["accuracy"], "evals": run.evals,
                        "data_time_s": t_data, "train_time_s": run.log.wall_time,
                        "note": "eval: the clean evaluation pairs of dpo-preference-pairs (161), raw scores"},
            "history": {k: [round(u[k], 5) for u in run.log.updates] for k in ("loss", "accuracy", "margin")}}
    meta["metrics"]["time_s"] = time.perf_counter() - t0
    save_reward_model(rm, out, meta)
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.align.reward",
                                 description="Make Part 8's shipped reward model (data/checkpoints/reward-model).")
    ap.add_argument("--out", default=None, help="folder (default data/checkpoints/reward-model)")
    ap.add_argument("--steps", type=int, default=RM_CONFIG.steps, help="updates")
    ap.add_argument("--prompts", type=int, default=RM_N_PROMPTS, help="fresh questions to sample pairs on")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    cfg = dataclasses.replace(RM_CONFIG, steps=a.steps)
    meta = make_reward_model(a.out, cfg, a.prompts, progress=not a.no_progress,
                             command="python -m lib.align.reward " + " ".join(argv if argv is not None else sys.argv[1:]))
    m = meta["metrics"]
    print(json.dumps({k: m[k] for k in ("eval_accuracy", "eval_auc", "eval_ece", "train_subset_accuracy",
                                        "data_time_s", "train_time_s", "time_s")}, indent=1))
    print(json.dumps(meta["data"], indent=1))
    return 0


__all__ = ["PADDINGS", "REWARD_MODEL", "last_token_index", "RewardModel", "parameter_counts", "pad_sequences",
           "pair_sequences", "pair_scores", "sequence_scores", "reliability", "pair_metrics", "RewardConfig",
           "RewardRun", "batch_loss", "train_reward_model", "kl_penalized_rewards", "lm_episode",
           "save_reward_model", "load_reward_model", "fresh_questions", "verifier_pairs", "reference_scores", "sampled_attention_mask", "make_reward_model",
           "main", "RM_CONFIG", "RM_N_PROMPTS", "RM_GROUP_SIZE", "RM_PER_PROMPT", "RM_DATA_SEED", "N_NORM", "NORM_SAMPLES",
           "NORM_SEED"]


if __name__ == "__main__":
    sys.exit(main())
