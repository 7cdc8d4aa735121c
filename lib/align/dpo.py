"""Direct Preference Optimization (DPO) of a causal LM on preference pairs, and its relatives.

For a prompt ``x`` with a chosen completion ``y_w`` and a rejected one ``y_l``, let
``π(y|x)`` be the policy's sequence log-probability (summed over completion tokens) and
``ref(y|x)`` the frozen reference's (the starting SFT model). With the *log-ratio margin*

    Δ = [π(y_w) − ref(y_w)] − [π(y_l) − ref(y_l)],

the losses per pair (:func:`dpo_loss`) are

* ``"sigmoid"`` (DPO, Rafailov et al. 2023): ``−log σ(β Δ)`` — ``log 2`` when policy = reference;
* ``"ipo"`` (IPO, Azar et al. 2023): ``(Δ' − 1/(2β))²`` where ``Δ'`` uses log-probs *averaged*
  over each completion's tokens (TRL's normalisation);

and ``sft_weight > 0`` adds the NLL of the chosen completions (mean over their tokens, TRL's
``"sft"`` loss / RPO), "DPO + SFT". The *implicit rewards* are ``r = β (π − ref)`` per completion;
the sigmoid loss's gradient with respect to ``π(y_w)`` is ``−β σ(r_l − r_w)`` and with respect
to ``π(y_l)`` its negative (:func:`gradient_weight`): a pair the model already ranks right
(``r_w ≫ r_l``) barely moves it, a mis-ranked pair moves it with weight up to ``β``.

The reference log-probs can be computed once before training (:func:`reference_logps`, so only
the policy stays in memory) or on the fly with the reference model; both give the same numbers.
:func:`train_dpo` follows the book's training convention (:mod:`lib.runs`). :func:`sampled_kl`
measures the exact per-token KL(π ‖ ref) along the policy's own samples and their verifier
reward (the β sweep); :func:`update_costs` measures memory and time per update of DPO and of
PPO-RLHF with live models. ``python -m lib.align.dpo`` makes the shipped preference pairs, DPO
models and β-sweep results.

Book: seed-17, seed-18, seed-19, seed-20, seed-21, seed-22.
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
import torch.nn.functional as F

from lib.llm.model import IGNORE_INDEX
from lib.objectives import bradley_terry_loss  # noqa: F401  (re-exported: Part 4 uses it here)
from lib.runs import Run, Stopwatch, TrainLog, check_choice, check_int, check_positive, check_range

LOSS_TYPES = ("sigmoid", "ipo")


# ----------------------------------------------------------------------------- batches and log-probs
def _triples(pairs) -> list[tuple[list[int], list[int], list[int]]]:
    """``(prompt, chosen, rejected)`` token lists from :class:`~lib.align.preference.PreferencePair`
    objects or 3-tuples."""
    if len(pairs) == 0:
        raise ValueError("need at least one pair")
    out = []
    for i, p in enumerate(pairs):
        t = (p.prompt_ids, p.chosen_ids, p.rejected_ids) if hasattr(p, "prompt_ids") else p
        if not isinstance(t, (tuple, list)) or len(t) != 3:
            raise ValueError(f"pair {i} must be a PreferencePair or a (prompt, chosen, rejected) triple")
        if any(len(x) == 0 for x in t):
            raise ValueError(f"pair {i}: prompt, chosen and rejected must be non-empty token lists")
        out.append(tuple(list(x) for x in t))
    return out


def pair_batch(pairs, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, targets)``, each (2B, T): the B chosen sequences (prompt + completion) then the B
    rejected ones, right-padded; ``targets`` is the next token on completion positions and
    ``IGNORE_INDEX`` elsewhere (:func:`lib.align.sft.sft_batch`)."""
    from lib.align.sft import sft_batch

    tr = _triples(pairs)
    ids, targets, _ = sft_batch([(p, c) for p, c, _ in tr] + [(p, r) for p, _, r in tr], pad_id)
    return ids, targets


def sequence_logps(model, ids: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logps, n_tokens)``, each (N,): the summed log-probability of each row's completion tokens
    (positions whose target is not ``IGNORE_INDEX``) and their number."""
    if ids.dim() != 2 or ids.shape != targets.shape:
        raise ValueError(f"ids and targets must share one (N, T) shape, got {tuple(ids.shape)}, "
                         f"{tuple(targets.shape)}")
    mask = targets != IGNORE_INDEX
    logits = model(ids).logits.float()
    tok = torch.log_softmax(logits, -1).gather(-1, targets.clamp_min(0)[..., None])[..., 0]
    return (tok * mask).sum(1), mask.sum(1)


@torch.no_grad()
def reference_logps(ref_model, pairs, pad_id: int, batch_size: int = 64) -> torch.Tensor:
    """(N, 2) reference log-probs ``[chosen, rejected]`` of every pair, computed once."""
    tr = _triples(pairs)
    out = []
    was = ref_model.training
    ref_model.eval()
    for s in range(0, len(tr), batch_size):
        ids, targets = pair_batch(tr[s:s + batch_size], pad_id)
        lp, _ = sequence_logps(ref_model, ids, targets)
        out.append(lp.view(2, -1).T)
    ref_model.train(was)
    return torch.cat(out).detach()


# ----------------------------------------------------------------------------- the losses
def _check_four(*xs):
    shapes = {tuple(x.shape) for x in xs}
    if len(shapes) != 1 or len(xs[0].shape) != 1:
        raise ValueError(f"the four log-prob tensors must share one 1-D shape, got {sorted(shapes)}")


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float, loss_type: str = "sigmoid",
             n_chosen: torch.Tensor | None = None, n_rejected: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pair loss (B,) from the four sequence log-probs (module docstring).

    ``loss_type="ipo"`` needs ``n_chosen`` and ``n_rejected``, the completions' token counts.
    """
    _check_four(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
        raise ValueError(f"beta must be a number > 0, got {beta!r}")
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
    chosen = policy_chosen - ref_chosen
    rejected = policy_rejected - ref_rejected
    if loss_type == "sigmoid":
        return -F.logsigmoid(beta * (chosen - rejected))
    if n_chosen is None or n_rejected is None:
        raise ValueError("loss_type='ipo' needs n_chosen and n_rejected (completion token counts)")
    h = chosen / n_chosen.clamp_min(1) - rejected / n_rejected.clamp_min(1)
    return (h - 1 / (2 * beta)) ** 2


def implicit_rewards(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta: float):
    """``(r_chosen, r_rejected)``: ``β (π − ref)`` of each completion (detached)."""
    _check_four(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    with torch.no_grad():
        return beta * (policy_chosen - ref_chosen), beta * (policy_rejected - ref_rejected)


def gradient_weight(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """σ(r_rejected − r_chosen): the sigmoid loss's gradient with respect to the chosen log-prob is
    ``−β`` times it, with respect to the rejected one ``+β`` times it."""
    return torch.sigmoid(r_rejected - r_chosen)


def preference_correct(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """1 where the implicit reward ranks the chosen completion higher, 0 where lower, ½ on a tie
    (so the reference itself scores exactly ½)."""
    return (torch.sign(r_chosen - r_rejected) + 1) / 2


# ----------------------------------------------------------------------------- training
@dataclasses.dataclass
class DPOConfig:
    """Hyperparameters of :func:`train_dpo` (and the seed).

    beta: strength of the pull to the reference (the DPO paper used 0.1–0.5; typical 0.01–1);
    loss_type: ``"sigmoid"`` (DPO) or ``"ipo"``; sft_weight: weight of the NLL on the chosen
    completions added to the loss (0 = plain DPO; TRL's RPO uses ~1); steps: updates; batch_size:
    pairs per update (epochs over the pairs, reshuffled each time); lr: AdamW peak learning rate
    (1e-5–1e-4 for the book's tiny model; ~5e-7 for billion-parameter ones); warmup_steps: linear
    warm-up, then cosine decay to ``min_lr_ratio`` of the peak; max_grad_norm: gradient clipping;
    precompute_ref: compute the reference log-probs once and drop the reference model, or run the
    reference on every batch; eval_every: updates between evaluations on the evaluation pairs;
    seed: batch order (and anything random).
    """

    beta: float = 0.1
    loss_type: str = "sigmoid"
    sft_weight: float = 0.0
    steps: int = 60
    batch_size: int = 16
    lr: float = 5e-5
    warmup_steps: int = 5
    min_lr_ratio: float = 0.1
    max_grad_norm: float = 1.0
    precompute_ref: bool = True
    eval_every: int = 10
    seed: int = 0

    def __post_init__(self):
        check_positive(self, "beta", "lr", "max_grad_norm")
        check_choice(self, "loss_type", LOSS_TYPES)
        check_range(self, "sft_weight", 0.0, 100.0)
        check_int(self, "steps", "batch_size", "eval_every")
        check_int(self, "warmup_steps", "seed", minimum=0)
        check_range(self, "min_lr_ratio", 0.0, 1.0)
        check_choice(self, "precompute_ref", (True, False))
        if self.warmup_steps > self.steps:
            raise ValueError(f"DPOConfig.warmup_steps must be <= steps ({self.steps}), got {self.warmup_steps}")


@dataclasses.dataclass
class DPORun(Run):
    """A finished :func:`train_dpo`: the trained ``policy``, the ``reference`` model (``None`` when
    its log-probs were precomputed: it was not kept), the reference log-probs of the training and
    evaluation pairs, and ``evals`` (one dict per evaluation: step, accuracy, margin, mean chosen
    and rejected log-prob change). ``log.eval_returns`` is the evaluation pairs' implicit
    preference accuracy."""

    policy: Any = None
    reference: Any = None
    ref_train: torch.Tensor | None = None
    ref_eval: torch.Tensor | None = None
    evals: list = dataclasses.field(default_factory=list)


def batch_loss(policy, pairs, pad_id: int, cfg: DPOConfig, ref_logps: torch.Tensor | None = None,
               reference=None) -> tuple[torch.Tensor, dict]:
    """The loss of one batch of pairs and its diagnostics; reference log-probs from ``ref_logps``
    (B, 2) or, when ``None``, from ``reference`` run now."""
    ids, targets = pair_batch(pairs, pad_id)
    dev = next(policy.parameters()).device
    ids, targets = ids.to(dev), targets.to(dev)
    lp, n = sequence_logps(policy, ids, targets)
    B = len(pairs)
    pc, pr, nc, nr = lp[:B], lp[B:], n[:B], n[B:]
    if ref_logps is None:
        if reference is None:
            raise ValueError("need ref_logps or a reference model")
        with torch.no_grad():
            rl, _ = sequence_logps(reference, ids, targets)
        rc, rr = rl[:B], rl[B:]
    else:
        rc, rr = ref_logps[:, 0].to(dev), ref_logps[:, 1].to(dev)
    per_pair = dpo_loss(pc, pr, rc, rr, cfg.beta, cfg.loss_type, nc, nr)
    pref = per_pair.mean()
    nll = -pc.sum() / nc.sum()                  # NLL per chosen token (TRL's "sft" loss)
    loss = pref + cfg.sft_weight * nll if cfg.sft_weight > 0 else pref
    r_c, r_r = implicit_rewards(pc, pr, rc, rr, cfg.beta)
    stats = {"loss": float(loss.detach()), "pref_loss": float(pref.detach()), "nll": float(nll.detach()),
             "accuracy": float(preference_correct(r_c, r_r).mean()), "margin": float((r_c - r_r).mean()),
             "chosen_reward": float(r_c.mean()), "rejected_reward": float(r_r.mean()),
             "chosen_logp": float(pc.detach().mean()), "rejected_logp": float(pr.detach().mean()),
             "weight": float(gradient_weight(r_c, r_r).mean())}
    return loss, stats


@torch.no_grad()
def evaluate_pairs(policy, pairs, ref: torch.Tensor, pad_id: int, beta: float, batch_size: int = 64) -> dict:
    """Implicit preference on ``pairs`` given their reference log-probs ``ref`` (N, 2): per-pair
    ``correct`` (1, 0 or ½), ``margin`` (r_w − r_l), and the log-prob changes ``d_chosen``,
    ``d_rejected`` (π − ref), as arrays; ``accuracy`` their mean correctness."""
    was = policy.training
    policy.eval()
    pol = []
    tr = _triples(pairs)
    for s in range(0, len(tr), batch_size):
        ids, targets = pair_batch(tr[s:s + batch_size], pad_id)
        lp, _ = sequence_logps(policy, ids.to(ref.device), targets.to(ref.device))
        pol.append(lp.view(2, -1).T)
    policy.train(was)
    p = torch.cat(pol)
    r_c, r_r = implicit_rewards(p[:, 0], p[:, 1], ref[:, 0], ref[:, 1], beta)
    corr = preference_correct(r_c, r_r)
    return {"correct": corr.cpu().numpy(), "margin": (r_c - r_r).cpu().numpy(),
            "d_chosen": (p[:, 0] - ref[:, 0]).cpu().numpy(), "d_rejected": (p[:, 1] - ref[:, 1]).cpu().numpy(),
            "accuracy": float(corr.mean())}


def train_dpo(cfg: DPOConfig, pairs, pad_id: int, model=None, eval_pairs=None, progress: bool = False) -> DPORun:
    """Train a copy of ``model`` (a TinyLM, or a checkpoint name; default the cold start
    ``tiny-lm-arith-sft``) on preference ``pairs`` with ``cfg``; the reference is a frozen copy of
    the starting model. ``eval_pairs`` (optional) are evaluated at the start and every
    ``cfg.eval_every`` updates (:func:`evaluate_pairs`). Returns a :class:`DPORun`; ``log.updates``
    holds each update's loss, implicit-reward accuracy, margin, mean chosen and rejected rewards and
    log-probs, mean gradient weight, gradient norm and learning rate."""
    from lib.llm.checkpoint import load_model
    from lib.llm.train import lr_at

    if not isinstance(cfg, DPOConfig):
        raise TypeError(f"cfg must be a DPOConfig, got {type(cfg).__name__}")
    tr = _triples(pairs)
    if model is None or isinstance(model, (str, pathlib.Path)):
        from lib.align.sft import COLD_START

        model = load_model(model or COLD_START)
    policy = copy.deepcopy(model)
    reference = copy.deepcopy(model).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    ref_train = reference_logps(reference, tr, pad_id)
    ref_eval = reference_logps(reference, eval_pairs, pad_id) if eval_pairs is not None else None
    if cfg.precompute_ref:
        reference = None                            # only the policy stays in memory
    log = TrainLog()
    run = DPORun(cfg, log, policy, reference, ref_train, ref_eval)
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=0.0)
    rng = np.random.default_rng(cfg.seed)
    order = np.array([], dtype=int)

    def do_eval(step):
        out = {}

        def ev():
            out.update(evaluate_pairs(policy, eval_pairs, ref_eval, pad_id, cfg.beta))
            return out["correct"]

        log.record_eval(step, ev)
        run.evals.append({"step": step, "accuracy": out["accuracy"], "margin": float(out["margin"].mean()),
                          "d_chosen": float(out["d_chosen"].mean()), "d_rejected": float(out["d_rejected"].mean())})

    it = range(cfg.steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"DPO ({cfg.loss_type}, β={cfg.beta})", mininterval=1.0)
    with Stopwatch(log):
        if eval_pairs is not None:
            do_eval(0)
        for step in it:
            if len(order) < cfg.batch_size:
                order = np.concatenate([order, rng.permutation(len(tr))])
            idx, order = order[:cfg.batch_size], order[cfg.batch_size:]
            lr = lr_at(step, max_lr=cfg.lr, warmup_steps=cfg.warmup_steps, total_steps=cfg.steps,
                       min_lr_ratio=cfg.min_lr_ratio)
            for g in opt.param_groups:
                g["lr"] = lr
            policy.train()
            loss, stats = batch_loss(policy, [tr[i] for i in idx], pad_id, cfg,
                                     None if reference is not None else ref_train[torch.as_tensor(idx)],
                                     reference)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
            opt.step()
            log.record_update(step + 1, lr=lr, grad_norm=float(gn), **stats)
            if eval_pairs is not None and ((step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps):
                do_eval(step + 1)
    policy.eval()
    return run


# ----------------------------------------------------------------------------- seed-22: per-pair updates
def per_pair_gradients(policy, pairs, ref: torch.Tensor, pad_id: int, beta: float) -> dict:
    """For each pair alone (sigmoid loss): ``grad_norm``, the norm of the loss's gradient over all
    parameters; ``direction_norm``, the norm of ∇[log π(y_w) − log π(y_l)]; the analytic ``weight``
    σ(r_l − r_w) and the ``margin`` r_w − r_l; and autograd's derivatives of the loss with respect to
    the two sequence log-probs, ``dl_dchosen`` and ``dl_drejected`` (which must be ``−β`` and ``+β``
    times the weight, so that ``grad_norm = β · weight · direction_norm``). Arrays of length N."""
    tr = _triples(pairs)
    if ref.shape != (len(tr), 2):
        raise ValueError(f"ref must have shape ({len(tr)}, 2), got {tuple(ref.shape)}")
    params = [p for p in policy.parameters() if p.requires_grad]
    keys = ("grad_norm", "direction_norm", "weight", "dl_dchosen", "dl_drejected", "margin")
    out: dict = {k: [] for k in keys}

    def norm(gs):
        return float(torch.sqrt(sum((g.double() ** 2).sum() for g in gs)))

    was = policy.training
    policy.eval()
    for i, t in enumerate(tr):
        ids, targets = pair_batch([t], pad_id)
        lp, _ = sequence_logps(policy, ids, targets)
        pc, pr = lp[:1], lp[1:]
        direction = torch.autograd.grad((pc - pr).sum(), params, retain_graph=True)
        loss = dpo_loss(pc, pr, ref[i:i + 1, 0], ref[i:i + 1, 1], beta).sum()
        grads = torch.autograd.grad(loss, params + [pc, pr])
        r_c, r_r = implicit_rewards(pc, pr, ref[i:i + 1, 0], ref[i:i + 1, 1], beta)
        out["grad_norm"].append(norm(grads[:-2]))
        out["direction_norm"].append(norm(direction))
        out["weight"].append(float(gradient_weight(r_c, r_r)))
        out["dl_dchosen"].append(float(grads[-2]))
        out["dl_drejected"].append(float(grads[-1]))
        out["margin"].append(float(r_c - r_r))
    policy.train(was)
    return {k: np.array(v) for k, v in out.items()}


# ----------------------------------------------------------------------------- seed-21: KL and reward
def token_kl(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """Exact KL(p ‖ q) of next-token distributions given as logits (..., V): the sum over the
    vocabulary of ``p (log p − log q)``, shape (...)."""
    if logits_p.shape != logits_q.shape or logits_p.dim() < 1:
        raise ValueError(f"logits must share one shape (..., V), got {tuple(logits_p.shape)} and "
                         f"{tuple(logits_q.shape)}")
    lp = torch.log_softmax(logits_p.float(), -1)
    lq = torch.log_softmax(logits_q.float(), -1)
    return (lp.exp() * (lp - lq)).sum(-1)


@torch.no_grad()
def sampled_kl(policy, reference, tokenizer, problems, samples: int = 4, max_new_tokens: int = 32,
               seed: int = 0, batch_size: int = 32) -> dict:
    """Sample ``samples`` answers per problem from ``policy`` (temperature 1, seeded) and measure,
    at every completion token, the exact KL(π ‖ ref) of the next-token distributions (a sum over
    the vocabulary, not an estimate from the sampled token). Returns ``kl_per_token`` (mean over
    all completion tokens), ``kl_per_answer`` (mean over answers of their summed KL), ``reward``
    (share of answers the verifier accepts) and ``hits`` (problems, samples) bools."""
    from lib.align.tasks import encode_prompts
    from lib.data import verify_answer
    from lib.llm.generate import sample_groups

    probs = list(problems)
    if not probs:
        raise ValueError("need at least one problem")
    dev = next(policy.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    ids_all = encode_prompts(tokenizer, probs)
    kl_tok, n_tok, kl_ans = 0.0, 0, []
    hits = np.zeros((len(probs), samples), dtype=bool)
    policy.eval()
    reference.eval()
    for s in range(0, len(probs), batch_size):
        ids, attn, cmask, n = sample_groups(policy, ids_all[s:s + batch_size], samples, max_new_tokens,
                                            tokenizer.eos_id, generator=gen)
        kl = token_kl(policy(ids, attention_mask=attn).logits[:, n - 1:-1],
                      reference(ids, attention_mask=attn).logits[:, n - 1:-1]) * cmask
        kl_tok += float(kl.sum())
        n_tok += int(cmask.sum())
        kl_ans += kl.sum(1).tolist()
        for k, row in enumerate(ids[:, n:].tolist()):
            text = tokenizer.decode(row, skip_special_tokens=True)
            hits[s + k // samples, k % samples] = verify_answer(probs[s + k // samples], text)
    return {"kl_per_token": kl_tok / max(n_tok, 1), "kl_per_answer": float(np.mean(kl_ans)),
            "reward": float(hits.mean()), "hits": hits}


# ----------------------------------------------------------------------------- seed-17: RLHF vs DPO costs
def held_bytes(module, trainable: bool) -> dict:
    """Bytes a model holds during training, counted from its live tensors after one real AdamW
    step when ``trainable`` (weights, gradients, optimizer state), else its weights only."""
    params = list(module.parameters())
    nb = lambda ts: sum(t.numel() * t.element_size() for t in ts if torch.is_tensor(t))  # noqa: E731
    out = {"weights": nb(params), "gradients": 0, "optimizer": 0}
    if trainable:
        for p in params:
            p.grad = torch.zeros_like(p)
        opt = torch.optim.AdamW(params, lr=0.0)
        opt.step()
        out["gradients"] = nb(p.grad for p in params)
        out["optimizer"] = nb(t for s in opt.state.values() for t in s.values())
        for p in params:
            p.grad = None
    return out


class _SavedBytes:
    """Context manager summing the bytes of the tensors autograd saves for the backward pass (the
    activation memory of a training step), via ``torch.autograd.graph.saved_tensors_hooks``. Each
    storage counts once, and the storages of ``exclude`` (the models' weights) not at all."""

    def __init__(self, exclude=()):
        self.bytes = 0
        self._seen = {p.untyped_storage().data_ptr() for p in exclude}

    def _pack(self, t):
        st = t.untyped_storage()
        if st.data_ptr() not in self._seen:
            self._seen.add(st.data_ptr())
            self.bytes += st.nbytes()
        return t

    def __enter__(self):
        self._ctx = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def update_costs(model, pairs, prompts, pad_id: int, eos_id: int, group_size: int = 4,
                 max_new_tokens: int = 32, reps: int = 1, seed: int = 0) -> dict:
    """Measure one update of each stage with live copies of ``model``, on the same pairs and prompts.

    * ``"reward model"`` (RLHF stage 2): Bradley–Terry loss ``−log σ(s_w − s_l)`` of a scalar-head
      copy on the B pairs;
    * ``"PPO"`` (RLHF stage 3): sample ``group_size`` answers per prompt from the policy, score
      them with the (frozen) reward model, reference log-probs, critic values, then one clipped
      policy-gradient step and one value step;
    * ``"DPO"``: the loss of :func:`batch_loss` on the B pairs with the reference run on the batch
      (``"DPO, precomputed ref"``: with the reference log-probs given).

    For each: ``models`` (name -> held bytes, see :func:`held_bytes`), ``saved_bytes`` (activations
    autograd kept for the backward pass, measured on the first update), ``time_s`` (wall time per
    update, mean of ``reps`` after that first one). Timings are of this machine, not a claim.
    """
    gen = torch.Generator().manual_seed(int(seed))
    policy = copy.deepcopy(model)
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    from lib.align.reward import RewardModel    # the scalar-head model (Part 8); critics use its token scores

    reward_model = RewardModel(copy.deepcopy(model), bias=True)
    critic = RewardModel(copy.deepcopy(model), bias=True)
    tr = _triples(pairs)
    ids_p, tg_p = pair_batch(tr, pad_id)
    B = len(tr)

    def rm_step(opt):
        s = reward_model.token_scores(ids_p)
        last = (tg_p != IGNORE_INDEX).long().cumsum(1).argmax(1)       # last completion position
        score = s.gather(1, last[:, None])[:, 0]
        loss = bradley_terry_loss(score[:B], score[B:])
        opt.zero_grad()
        loss.backward()
        opt.step()

    cfg = DPOConfig(beta=0.1)
    ref_lp = reference_logps(reference, tr, pad_id)

    def dpo_step(opt, precomputed):
        loss, _ = batch_loss(policy, tr, pad_id, cfg, ref_lp if precomputed else None, reference)
        opt.zero_grad()
        loss.backward()
        opt.step()

    from lib.llm.generate import sample_groups, token_logprobs

    def ppo_step(opt):
        with torch.no_grad():
            ids, attn, cmask, n = sample_groups(policy, prompts, group_size, max_new_tokens, eos_id,
                                                generator=gen)
            last = n - 1 + cmask.sum(1)                                  # last real token of each row
            score = reward_model.eval().token_scores(ids, attn).gather(1, last[:, None])[:, 0]
            ref_lp_tok = token_logprobs(reference, ids, attn, n)
            old = token_logprobs(policy, ids, attn, n)
        values = critic.token_scores(ids, attn)[:, n - 1:-1]
        new = token_logprobs(policy, ids, attn, n)
        reward = score[:, None] - 0.05 * (old - ref_lp_tok)              # KL-shaped reward per token
        adv = (reward - values.detach()) * cmask
        ratio = torch.exp(new - old)
        pg = -torch.min(ratio * adv, ratio.clamp(0.8, 1.2) * adv).sum() / cmask.sum()
        vloss = (((values - reward) ** 2) * cmask).sum() / cmask.sum()
        opt.zero_grad()
        (pg + vloss).backward()
        opt.step()

    stages = {
        "reward model": ({"reward model": (reward_model, True)}, rm_step),
        "PPO": ({"policy": (policy, True), "reference": (reference, False), "reward model": (reward_model, False),
                 "critic": (critic, True)}, ppo_step),
        "DPO": ({"policy": (policy, True), "reference": (reference, False)}, lambda o: dpo_step(o, False)),
        "DPO, precomputed ref": ({"policy": (policy, True)}, lambda o: dpo_step(o, True)),
    }
    out = {}
    for name, (models, step) in stages.items():
        trainable = [m for m, t in models.values() if t]
        opt = torch.optim.AdamW([p for m in trainable for p in m.parameters()], lr=1e-12)
        every = [p for m, _ in models.values() for p in m.parameters()]
        with _SavedBytes(exclude=every) as sb:                           # also the warm-up step
            step(opt)
        t0 = time.perf_counter()
        for _ in range(reps):
            step(opt)
        out[name] = {"models": {k: held_bytes(m, t) for k, (m, t) in models.items()},
                     "saved_bytes": sb.bytes, "time_s": (time.perf_counter() - t0) / reps}
    return out


# ----------------------------------------------------------------------------- shipped artefacts
DPO_MODELS = {"tiny-lm-arith-dpo": 0.0, "tiny-lm-arith-dpo-sft": 1.0}   # name -> sft_weight
SWEEP_NAME = "dpo-beta-sweep"
SWEEP_BETAS = (0.03, 0.1, 0.3, 1.0)
DATA_SEED = 0


def held_out_accuracy(model, tokenizer, task, samples: int = 8, seed: int = 123) -> dict:
    """Accuracy on the task's held-out questions, judged by the verifier: ``greedy`` (share) with
    ``greedy_hits`` (questions,) bools, and ``sampled`` (share of ``samples`` answers per question at
    temperature 1, seeded) with ``hits`` (questions, samples) bools — per question, for paired
    comparisons between models."""
    from lib.align.tasks import encode_prompts
    from lib.data import verify_answer
    from lib.llm.generate import greedy_accuracy, sampled_hits

    ids = encode_prompts(tokenizer, task.held_out)
    greedy_hits = np.zeros(len(ids), dtype=bool)

    def check(i, c):
        return verify_answer(task.held_out[i], tokenizer.decode(c, skip_special_tokens=True))

    def check_greedy(i, c):
        greedy_hits[i] = check(i, c)
        return greedy_hits[i]

    g = greedy_accuracy(model, ids, check_greedy, tokenizer.eos_id)
    hits = sampled_hits(model, ids, check, tokenizer.eos_id, samples, seed=seed)
    return {"greedy": float(g), "greedy_hits": greedy_hits, "sampled": float(hits.mean()), "hits": hits}


#: The shipped pairs: generated questions besides the log, stratified prompts, answers per prompt,
#: share of the pairs kept clean for evaluation.
N_GENERATED, N_PROMPTS, GROUP_SIZE, EVAL_SHARE = 1500, 1600, 8, 0.3


def make_artefacts(out=None, steps: int = 80, sweep_steps: int = 80, sweep_seeds=(0, 1),
                   parts=("pairs", "models", "sweep"), progress: bool = True, command: str | None = None) -> dict:
    """Make what Part 4 ships (in ``out``, default ``data/checkpoints``):

    * ``dpo-preference-pairs/``: ``pairs.json`` + ``meta.json`` (:func:`lib.align.preference.make_preference_data`
      with seed :data:`DATA_SEED`: :data:`N_GENERATED` generated questions besides the log,
      :data:`N_PROMPTS` stratified prompts, :data:`GROUP_SIZE` answers each, an :data:`EVAL_SHARE` of the
      pairs kept clean for evaluation, 10 % noisy training labels);
    * ``tiny-lm-arith-dpo`` and ``tiny-lm-arith-dpo-sft``: the cold start trained ``steps`` updates with
      plain DPO and with DPO + SFT (weight 1) on those pairs, with their held-out accuracies;
    * ``dpo-beta-sweep/``: ``results.json`` + ``meta.json``, for each β in :data:`SWEEP_BETAS` and seed
      in ``sweep_seeds``, ``sweep_steps`` updates of plain DPO, then the exact per-token KL to the
      reference along 4 samples per held-out question and their verifier reward (Part 8 draws the
      reward–KL frontier from it).
    """
    from lib.align.preference import PAIRS_NAME, load_pairs, make_preference_data, pairs_to_json
    from lib.align.sft import COLD_START
    from lib.align.tasks import chain_arithmetic_task
    from lib.llm.checkpoint import CHECKPOINT_DIR, load_model, save_checkpoint
    from lib.llm.tokenizer import load_tokenizer
    from lib.provenance import git_commit, machine, tree_dirty

    out = pathlib.Path(out) if out is not None else CHECKPOINT_DIR
    torch.set_num_threads(1)
    tok = load_tokenizer()
    task = chain_arithmetic_task()
    cold = load_model(COLD_START)
    command = command or "python -m lib.align.dpo"
    common = {"machine": machine(), "commit": git_commit(), "tree_dirty": tree_dirty(), "command": command, "base": COLD_START,
              "task": task.describe()}
    done: dict = {}
    t0 = time.perf_counter()
    if "pairs" in parts:
        from lib import seed_everything

        seed_everything(DATA_SEED)
        t = time.perf_counter()
        data = make_preference_data(cold, tok, task, n_prompts=N_PROMPTS, n_generated=N_GENERATED,
                                    group_size=GROUP_SIZE, eval_share=EVAL_SHARE, seed=DATA_SEED)
        folder = out / PAIRS_NAME
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "pairs.json").write_text(json.dumps({"train": pairs_to_json(data.train),
                                                       "eval": pairs_to_json(data.eval)}) + "\n")
        meta = {"name": PAIRS_NAME, "seed": DATA_SEED, "noise_share": data.noise_share,
                "dedup": data.dedup_stats, "pairs": data.pair_stats, "n_train": len(data.train),
                "n_eval": len(data.eval), "n_prompts": N_PROMPTS, "n_generated": N_GENERATED,
                "group_size": GROUP_SIZE, "eval_share": EVAL_SHARE, "n_clusters": 8,
                "builder": "lib.align.preference.make_preference_data", "time_s": time.perf_counter() - t,
                **common}
        (folder / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
        done["pairs"] = meta
    train, ev, pmeta = load_pairs(out / PAIRS_NAME)
    if "models" in parts:
        before = held_out_accuracy(cold, tok, task)
        for name, w in DPO_MODELS.items():
            cfg = DPOConfig(steps=steps, sft_weight=w, seed=0)
            t = time.perf_counter()
            run = train_dpo(cfg, train, tok.pad_id, cold, eval_pairs=ev, progress=progress)
            after = held_out_accuracy(run.policy, tok, task)
            meta = {"name": name, "seed": cfg.seed, "train_config": dataclasses.asdict(cfg),
                    "pairs": {"name": PAIRS_NAME, "n_train": len(train), "n_eval": len(ev)},
                    "metrics": {"held_out_before": {k: before[k] for k in ("greedy", "sampled")},
                                "held_out_after": {k: after[k] for k in ("greedy", "sampled")},
                                "eval_pair_accuracy": run.evals[-1]["accuracy"], "evals": run.evals,
                                "train_time_s": time.perf_counter() - t,
                                "note": "held-out: 200 questions, greedy and 8 samples at T = 1 (seed 123)"},
                    "history": {k: [round(u[k], 5) for u in run.log.updates]
                                for k in ("loss", "accuracy", "margin", "chosen_reward", "rejected_reward",
                                          "chosen_logp", "rejected_logp")},
                    **common}
            save_checkpoint(run.policy, out / name, meta)
            done[name] = meta["metrics"]
    if "sweep" in parts:
        rows = []
        for beta in SWEEP_BETAS:
            for seed in sweep_seeds:
                cfg = DPOConfig(beta=beta, steps=sweep_steps, seed=seed)
                run = train_dpo(cfg, train, tok.pad_id, cold, eval_pairs=ev, progress=progress)
                ref = copy.deepcopy(cold)
                kl = sampled_kl(run.policy, ref, tok, task.held_out, samples=4, seed=1000 + seed)
                rows.append({"beta": beta, "seed": seed, "kl_per_token": kl["kl_per_token"],
                             "kl_per_answer": kl["kl_per_answer"], "reward": kl["reward"],
                             "eval_pair_accuracy": run.evals[-1]["accuracy"],
                             "margin": run.evals[-1]["margin"]})
        base = sampled_kl(cold, copy.deepcopy(cold), tok, task.held_out, samples=4, seed=1000)
        folder = out / SWEEP_NAME
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "results.json").write_text(json.dumps({"runs": rows, "reference_reward": base["reward"]},
                                                        indent=1) + "\n")
        meta = {"name": SWEEP_NAME, "betas": list(SWEEP_BETAS), "seeds": list(sweep_seeds),
                "train_config": dataclasses.asdict(DPOConfig(steps=sweep_steps)),
                "kl": "exact per-token KL(policy || reference) along 4 policy samples per held-out question "
                      "(lib.align.dpo.sampled_kl, sampling seed 1000 + run seed); reward = verifier accuracy "
                      "of those samples", **common}
        (folder / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
        done["sweep"] = rows
    done["time_s"] = time.perf_counter() - t0
    return done


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.align.dpo",
                                 description="Make Part 4's shipped preference pairs, DPO models and beta sweep.")
    ap.add_argument("--out", default=None, help="folder (default data/checkpoints)")
    ap.add_argument("--parts", default="pairs,models,sweep", help="comma-separated subset of pairs,models,sweep")
    ap.add_argument("--steps", type=int, default=80, help="updates of the shipped DPO models")
    ap.add_argument("--sweep-steps", type=int, default=80, help="updates of each beta-sweep run")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    parts = tuple(p.strip() for p in a.parts.split(",") if p.strip())
    bad = set(parts) - {"pairs", "models", "sweep"}
    if bad:
        ap.error(f"unknown parts {sorted(bad)}")
    res = make_artefacts(a.out, a.steps, a.sweep_steps, parts=parts, progress=not a.no_progress,
                         command="python -m lib.align.dpo " + " ".join(argv if argv is not None else sys.argv[1:]))
    print(json.dumps({k: v for k, v in res.items() if k != "sweep"}, indent=1, default=str)[:3000])
    print(f"total {res['time_s']:.0f} s")
    return 0


__all__ = ["LOSS_TYPES", "pair_batch", "sequence_logps", "reference_logps", "dpo_loss", "bradley_terry_loss",
           "implicit_rewards",
           "gradient_weight", "preference_correct", "DPOConfig", "DPORun", "batch_loss", "evaluate_pairs",
           "train_dpo", "per_pair_gradients", "token_kl", "sampled_kl", "held_bytes",
           "update_costs",
           "held_out_accuracy", "DPO_MODELS", "SWEEP_NAME", "SWEEP_BETAS",
           "DATA_SEED", "make_artefacts", "main"]


if __name__ == "__main__":
    sys.exit(main())
