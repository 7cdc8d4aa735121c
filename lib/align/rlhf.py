"""PPO-RLHF on the book's tiny language model: the four models, their shared-base and dual-head
variants, the per-token KL, and the whole training loop.

**The four models** (:func:`build_four_models`). From the SFT checkpoint and a trained reward model:
the *actor* (a trainable copy of the SFT model: the policy), the *reference* (a frozen copy: the
anchor of the KL penalty), the *reward model* (frozen: scores a whole answer once, at its last
token) and the *critic* (a trainable copy of the reward model: it reads a value at every token).
Only the actor generates; the other three score what it wrote.

**Two ways to hold fewer weights.** :class:`ActorCritic` puts an LM head and a value head on one
trunk (one forward pass gives logits (B, T, V) and values (B, T)). :class:`SharedBase` keeps one
frozen base and gives each role its own LoRA adapters and head, switched at run time
(:meth:`SharedBase.role`); :meth:`SharedBase.standalone` builds the model a role stands for.

**The per-token KL** (:func:`token_kl_estimates`): at every completion token, the exact
``KL(actor || reference)`` of the two next-token distributions (a sum over the vocabulary) and
Schulman's estimators k1, k2, k3 from the sampled token alone (:mod:`lib.objectives`).

**The loop** (:func:`train_rlhf`, Ziegler et al. 2019, Ouyang et al. 2022): make experience
(the actor samples answers; reference log-probs, the reward model's score at the last token, the
critic's values), KL-penalised per-token rewards (:func:`lib.align.reward.kl_penalized_rewards`), token-level GAE
(:func:`token_gae`, which runs :func:`lib.rl.gae.compute_gae` time-first), then ``ppo_epochs``
passes over minibatches of the clipped policy loss and the clipped value loss
(:mod:`lib.objectives`), with a fixed or adaptive KL coefficient (:class:`AdaptiveKL`). The
verifier's accuracy of the sampled answers is logged beside the learned reward, so that reward
over-optimisation shows.

``python -m lib.align.rlhf --no-progress`` ships ``data/checkpoints/rlhf-kl-sweep`` (a sweep of KL
coefficients over seeds, and the comparison of SFT, DPO, PPO-RLHF, GRPO and rejection sampling on
the held-out questions).

Book: seed-77, seed-82, seed-83, seed-84, seed-85, seed-86, seed-87, seed-88.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import pathlib
import sys
import time
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from lib import progress as progress_bar
from lib.align.reward import RewardModel, kl_penalized_rewards, last_token_index, sampled_attention_mask
from lib.llm.generate import sample_groups, token_logprobs
from lib.objectives import clipped_surrogate, explained_variance, kl_k1, kl_k2, kl_k3, masked_mean, value_loss
from lib.peft.lora import LoRALinear
from lib.runs import Run, Stopwatch, TrainLog, check_int, check_positive, check_range

ROLES = ("actor", "reference", "reward", "critic")


# ----------------------------------------------------------------------------- the model protocol
def sequence_scores(reward_model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The reward model's score of each sequence (B,): ``reward_model(ids, attention_mask=mask)``,
    read at the last token the mask keeps, normalised by ``reward_model.normalize`` when it has one
    (:class:`lib.align.reward.RewardModel`: mean 0 and spread 1 on the SFT model's answers)."""
    s = reward_model(ids, attention_mask=mask)
    if hasattr(reward_model, "normalize"):
        s = reward_model.normalize(s)
    if not isinstance(s, torch.Tensor) or s.shape != (ids.shape[0],):
        raise ValueError(f"reward_model(ids, attention_mask) must return ({ids.shape[0]},) scores, got "
                         f"{getattr(s, 'shape', type(s).__name__)}")
    return s


def token_values(critic, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The critic's value at every position (B, T): ``critic.token_scores(ids, attention_mask=mask)``."""
    v = critic.token_scores(ids, attention_mask=mask)
    if not isinstance(v, torch.Tensor) or v.shape != ids.shape:
        raise ValueError(f"critic.token_scores must return {tuple(ids.shape)} values, got "
                         f"{getattr(v, 'shape', type(v).__name__)}")
    return v


def _check_lm(model, name: str) -> None:
    if not isinstance(model, nn.Module) or not hasattr(model, "config"):
        raise TypeError(f"{name} must be a TinyLM-like nn.Module with a .config, got {type(model).__name__}")


# ----------------------------------------------------------------------------- seed-83: the four models
@dataclasses.dataclass
class FourModels:
    """PPO-RLHF's four models. ``actor`` and ``critic`` train; ``reference`` and ``reward`` are frozen."""

    actor: nn.Module
    reference: nn.Module
    reward: nn.Module
    critic: nn.Module

    def roles(self) -> dict[str, nn.Module]:
        return {r: getattr(self, r) for r in ROLES}

    def trainable(self) -> dict[str, bool]:
        """Per role: whether every parameter requires a gradient (True), none does (False)."""
        out = {}
        for r, m in self.roles().items():
            flags = {p.requires_grad for p in m.parameters()}
            if len(flags) != 1:
                raise ValueError(f"the {r} mixes trainable and frozen parameters")
            out[r] = flags.pop()
        return out


def build_four_models(sft_model, reward_model) -> FourModels:
    """The four models from the SFT checkpoint and a trained reward model (copies; the inputs are
    left untouched): actor = SFT copy (trainable), reference = SFT copy (frozen, eval), reward =
    reward-model copy (frozen, eval), critic = reward-model copy (trainable)."""
    _check_lm(sft_model, "sft_model")
    if not isinstance(reward_model, nn.Module) or not hasattr(reward_model, "token_scores"):
        raise TypeError("reward_model must be an nn.Module with token_scores (lib.align.reward.RewardModel)")
    actor = copy.deepcopy(sft_model).requires_grad_(True)
    reference = copy.deepcopy(sft_model).eval().requires_grad_(False)
    reward = copy.deepcopy(reward_model).eval().requires_grad_(False)
    critic = copy.deepcopy(reward_model).requires_grad_(True)
    return FourModels(actor, reference, reward, critic)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    """Whether two modules have the same parameter names and bitwise equal values."""
    sa, sb = dict(a.named_parameters()), dict(b.named_parameters())
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ----------------------------------------------------------------------------- seed-84: one trunk, two heads
class ActorCritic(nn.Module):
    """A shared trunk with two heads: the LM head (logits (B, T, V)) and a value head (B, T).

    ``lm`` is a :class:`lib.llm.model.TinyLM` (its own ``lm_head`` is the LM head); ``value_head``
    an ``nn.Linear(d_model, 1)`` read from the final normed hidden state, as the reward model and
    critic read theirs. One forward pass serves both heads.
    """

    def __init__(self, lm, value_head: nn.Linear | None = None):
        super().__init__()
        _check_lm(lm, "lm")
        d = lm.config.d_model
        if value_head is None:
            value_head = nn.Linear(d, 1)
        if not isinstance(value_head, nn.Linear) or value_head.in_features != d or value_head.out_features != 1:
            raise ValueError(f"value_head must be an nn.Linear({d}, 1)")
        self.lm, self.value_head = lm, value_head

    @property
    def config(self):
        return self.lm.config

    def forward(self, ids, attention_mask=None):
        """``(logits (B, T, V), values (B, T))`` from one pass through the trunk."""
        out = self.lm(ids, attention_mask=attention_mask)
        return out.logits, self.value_head(out.last_hidden_state)[..., 0]


# ----------------------------------------------------------------------------- seed-85: four roles, one base
class RoleLoRA(nn.Module):
    """One frozen linear layer shared by several roles, each with its own LoRA factors.

    ``active`` names the role whose adapter runs (``None``: the bare base layer). Each role's
    adapter is a :class:`lib.peft.lora.LoRALinear` around the *same* base module, so the base
    weight is stored once.
    """

    def __init__(self, base: nn.Linear, roles: Sequence[str], r: int, alpha: float):
        super().__init__()
        self.base = base
        self.adapters = nn.ModuleDict({name: LoRALinear(base, r, alpha) for name in roles})
        self.active: str | None = None

    def forward(self, x):
        return self.base(x) if self.active is None else self.adapters[self.active](x)


class SharedBase(nn.Module):
    """PPO's four roles on one frozen :class:`TinyLM` base with per-role LoRA adapters and heads.

    * ``reference``: the bare base and its LM head (no adapter);
    * ``actor``: base + the actor's adapters, LM head;
    * ``reward`` and ``critic``: base + their adapters, each with its own scalar head read from the
      final normed hidden state (the reward at the last token, the critic at every token).

    ``role(name)`` switches every adapter at run time and returns a callable view: for the LM roles
    ``view(ids, attention_mask=...)`` returns the TinyLM output; for the scalar roles ``view(ids,
    attention_mask)`` gives the (B,) score at the last kept token and ``view.token_scores`` the (B, T)
    values. ``standalone(name)`` builds the equivalent separate model (adapters merged; a
    :class:`lib.align.reward.RewardModel` for the scalar roles).
    """

    LM_ROLES = ("actor", "reference")
    SCALAR_ROLES = ("reward", "critic")

    def __init__(self, base_lm, r: int = 4, alpha: float = 8.0, targets=("q_proj", "v_proj", "o_proj",
                                                                            "gate_proj", "up_proj", "down_proj")):
        super().__init__()
        _check_lm(base_lm, "base_lm")
        self.lm = copy.deepcopy(base_lm).requires_grad_(False)
        names = [n for n, m in self.lm.named_modules() if isinstance(m, nn.Linear) and n.rpartition(".")[2] in targets]
        if not names:
            raise ValueError(f"no linear layer of base_lm is named like {tuple(targets)}")
        adapted = ("actor", "reward", "critic")
        for name in names:
            parent, _, child = name.rpartition(".")
            mod = self.lm.get_submodule(parent)
            setattr(mod, child, RoleLoRA(getattr(mod, child), adapted, r, alpha))
        d = base_lm.config.d_model
        # the reward head is bias-free (as the reward model's); the critic's has a bias
        self.heads = nn.ModuleDict({"reward": nn.Linear(d, 1, bias=False), "critic": nn.Linear(d, 1)})
        self._current: str | None = None

    def _layers(self):
        return [m for m in self.lm.modules() if isinstance(m, RoleLoRA)]

    def switch(self, name: str) -> None:
        """Make ``name`` the active role of every adapter (``reference``: none)."""
        if name not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {name!r}")
        for m in self._layers():
            m.active = None if name == "reference" else name
        self._current = name

    def role(self, name: str) -> "_RoleView":
        self.switch(name)
        return _RoleView(self, name)

    def role_parameters(self, name: str) -> list[nn.Parameter]:
        """The parameters only ``name`` owns (its LoRA factors and head): what it trains."""
        if name not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {name!r}")
        if name == "reference":
            return []
        ps = [p for m in self._layers() for p in (m.adapters[name].lora_A, m.adapters[name].lora_B)]
        return ps + (list(self.heads[name].parameters()) if name in self.heads else [])

    @torch.no_grad()
    def perturb(self, std: float = 0.02, seed: int = 0) -> None:
        """Give every adapter's B and every head random values (adapters start at zero: an untrained
        role would equal the base, and a test of switching would prove nothing)."""
        g = torch.Generator().manual_seed(int(seed))
        for m in self._layers():
            for ad in m.adapters.values():
                ad.lora_B.copy_(torch.randn(ad.lora_B.shape, generator=g) * std)
        for h in self.heads.values():
            h.weight.copy_(torch.randn(h.weight.shape, generator=g) * std)

    def standalone(self, name: str) -> nn.Module:
        """The separate model role ``name`` stands for: a plain TinyLM (adapters merged into a copy of
        the base), or for ``reward`` / ``critic`` a :class:`lib.align.reward.RewardModel` with the role's head."""
        if name not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {name!r}")
        lm = copy.deepcopy(self.lm)
        for mod_name, m in list(lm.named_modules()):
            if isinstance(m, RoleLoRA):
                base = m.base
                if name != "reference":
                    with torch.no_grad():
                        base.weight += m.adapters[name].delta_weight()
                parent, _, child = mod_name.rpartition(".")
                setattr(lm.get_submodule(parent), child, base)
        if name in self.LM_ROLES:
            return lm.eval()
        alone = RewardModel(lm, bias=self.heads[name].bias is not None)
        alone.head.load_state_dict(self.heads[name].state_dict())
        return alone.eval()


class _RoleView:
    def __init__(self, owner: SharedBase, name: str):
        self.owner, self.name = owner, name

    def _ensure(self):
        self.owner.switch(self.name)

    def token_scores(self, ids, attention_mask=None):
        if self.name not in SharedBase.SCALAR_ROLES:
            raise ValueError(f"role {self.name!r} has no scalar head")
        self._ensure()
        h = self.owner.lm(ids, attention_mask=attention_mask).last_hidden_state
        return self.owner.heads[self.name](h)[..., 0]

    def __call__(self, ids, attention_mask=None):
        self._ensure()
        if self.name in SharedBase.LM_ROLES:
            return self.owner.lm(ids, attention_mask=attention_mask)
        v = self.token_scores(ids, attention_mask)
        if attention_mask is None:
            return v[:, -1]
        return v.gather(1, last_token_index(attention_mask)[:, None])[:, 0]


def weight_bytes(*modules: nn.Module) -> int:
    """Bytes of the distinct parameter tensors of ``modules`` (a tensor shared by several counts once)."""
    seen, total = set(), 0
    for m in modules:
        for p in m.parameters():
            if p.data_ptr() not in seen:
                seen.add(p.data_ptr())
                total += p.numel() * p.element_size()
    return total


# ----------------------------------------------------------------------------- seed-87: the per-token KL
@torch.no_grad()
def token_kl_estimates(policy, reference, ids: torch.Tensor, attn: torch.Tensor, n_prompt: int) -> dict:
    """At every completion position of ``ids`` (sampled from ``policy``): the exact ``KL(policy ||
    reference)`` of the next-token distributions (sum over the vocabulary) and the estimators k1, k2,
    k3 from the sampled token alone. Each value is a (B, T - n_prompt) tensor; also ``logp`` and
    ``logp_ref`` of the sampled tokens."""
    from lib.align.dpo import token_kl

    lp = policy(ids, attention_mask=attn).logits[:, n_prompt - 1:-1].float()
    lq = reference(ids, attention_mask=attn).logits[:, n_prompt - 1:-1].float()
    tok = ids[:, n_prompt:, None]
    logp = torch.log_softmax(lp, -1).gather(-1, tok)[..., 0]
    logp_ref = torch.log_softmax(lq, -1).gather(-1, tok)[..., 0]
    return {"exact": token_kl(lp, lq), "k1": kl_k1(logp, logp_ref), "k2": kl_k2(logp, logp_ref),
            "k3": kl_k3(logp, logp_ref), "logp": logp, "logp_ref": logp_ref}


def token_gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
              lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-level GAE over completions: ``(advantages, returns)``, each (B, T), 0 where ``mask`` is 0.

    Each completion is an episode whose steps are its tokens; it terminates at its last kept token
    (the value after it is 0). Runs :func:`lib.rl.gae.compute_gae` time-first (T, B) in float64.
    """
    from lib.rl.gae import compute_gae

    if rewards.shape != values.shape or rewards.shape != mask.shape or rewards.dim() != 2:
        raise ValueError(f"rewards, values and mask must share one (B, T) shape, got {tuple(rewards.shape)}, "
                         f"{tuple(values.shape)}, {tuple(mask.shape)}")
    m = mask.detach().cpu().double().numpy()
    if np.any(np.diff(m, axis=1) > 0):
        raise ValueError("mask must be 1 on a prefix of each row, then 0")
    r = rewards.detach().cpu().double().numpy() * m
    v = values.detach().cpu().double().numpy() * m
    last = np.cumsum(m, 1) == m.sum(1, keepdims=True)                # the last kept token and after
    adv, ret = compute_gae(r.T, v.T, np.zeros(len(r)), gamma, lam, terminated=last.T.astype(float))
    to = lambda a: torch.as_tensor(a.T * m, dtype=rewards.dtype, device=rewards.device)  # noqa: E731
    return to(adv), to(ret)


class AdaptiveKL:
    """Ziegler et al.'s KL controller: after each batch with per-answer KL ``kl``,
    ``coef *= 1 + clip(kl / target - 1, -0.2, 0.2) * n / horizon``; with ``target=None`` the
    coefficient stays fixed."""

    def __init__(self, coef: float, target: float | None = None, horizon: int = 10_000):
        if not coef >= 0:
            raise ValueError(f"coef must be >= 0, got {coef}")
        if target is not None and not target > 0:
            raise ValueError(f"target must be > 0 or None, got {target}")
        self.coef, self.target, self.horizon = float(coef), target, int(horizon)

    def update(self, kl: float, n: int) -> float:
        if self.target is not None:
            err = float(np.clip(kl / self.target - 1.0, -0.2, 0.2))
            self.coef *= 1.0 + err * n / self.horizon
        return self.coef


# ----------------------------------------------------------------------------- seed-86/88: the loop
@dataclasses.dataclass
class RLHFConfig:
    """PPO-RLHF hyperparameters. Defaults: a short run of the book's tiny model; InstructGPT's
    (Ouyang et al. 2022) and TRL's former ``PPOConfig`` values are given for scale.

    updates: PPO iterations, each on a fresh batch of sampled answers (InstructGPT: 256k episodes).
    prompts_per_update: prompts per batch (drawn without replacement within the update).
    samples_per_prompt: answers sampled per prompt (>= 2; 1 in InstructGPT).
    max_new_tokens: longest answer (the task needs about 20 tokens).
    lr, critic_lr: Adam learning rates of the actor and the critic (InstructGPT 1.3B: 1e-5 / 9e-6).
    kl_coef: weight of the per-token KL penalty in the reward (InstructGPT 0.02; TRL init 0.2).
    kl_target: per-answer KL the adaptive controller steers to (None: fixed coefficient;
        TRL: 6.0); kl_horizon: the controller's horizon in answers (TRL: 10000).
    gamma, lam: discount and GAE lambda over tokens (TRL: 1.0 and 0.95).
    ppo_epochs, minibatches: passes over each batch and minibatches per pass (TRL: 4 and 1).
    clip_eps: PPO's ratio clip (0.2); value_clip: clip of the value around its old value (0.2).
    value_coef: weight of the value loss (0.1; with the critic's own Adam it mostly sets how much
        the gradient-norm clip bites).
    whiten: normalise the advantages of each batch to zero mean and unit spread (TRL: yes).
    max_grad_norm: global gradient-norm clip (1.0).
    seed: seeds the choice of prompts and the sampling of answers.
    """

    updates: int = 30
    prompts_per_update: int = 16
    samples_per_prompt: int = 4
    max_new_tokens: int = 32
    lr: float = 2e-5
    critic_lr: float = 1e-4
    kl_coef: float = 0.05
    kl_target: float | None = None
    kl_horizon: int = 10_000
    gamma: float = 1.0
    lam: float = 0.95
    ppo_epochs: int = 2
    minibatches: int = 2
    clip_eps: float = 0.2
    value_clip: float = 0.2
    value_coef: float = 0.1
    whiten: bool = True
    max_grad_norm: float = 1.0
    seed: int = 0

    def __post_init__(self):
        check_int(self, "updates", "prompts_per_update", "max_new_tokens", "ppo_epochs", "minibatches",
                  "kl_horizon")
        check_int(self, "samples_per_prompt", minimum=2)
        check_int(self, "seed", minimum=0)
        check_positive(self, "lr", "critic_lr", "max_grad_norm", "value_clip", "value_coef")
        check_range(self, "kl_coef", 0.0, float("inf"), high_open=True)
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "lam", 0.0, 1.0)
        check_range(self, "clip_eps", 0.0, 1.0, low_open=True, high_open=True)
        if self.kl_target is not None:
            check_positive(self, "kl_target")
        if self.prompts_per_update * self.samples_per_prompt < self.minibatches:
            raise ValueError("RLHFConfig: fewer answers per batch than minibatches")


@dataclasses.dataclass
class Experience:
    """One batch of experience: sequences ``ids`` (B, T) with ``attn``, the completion ``mask``
    (B, T - n_prompt), ``n_prompt``, and per completion token the actor's and reference's log-probs,
    the critic's values, the KL-penalised ``rewards``, GAE ``advantages`` and ``returns``; per answer
    the reward model's ``scores`` and the verifier's ``correct`` (NaN without a verifier)."""

    ids: torch.Tensor
    attn: torch.Tensor
    mask: torch.Tensor
    n_prompt: int
    logp: torch.Tensor
    logp_ref: torch.Tensor
    values: torch.Tensor
    scores: torch.Tensor
    rewards: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    correct: np.ndarray
    io: list


def _io_row(model: str, inputs: dict, outputs: dict, generates: bool, trains: bool) -> dict:
    shape = lambda t: "x".join(str(s) for s in t.shape)  # noqa: E731
    return {"model": model, "inputs": {k: shape(v) for k, v in inputs.items()},
            "outputs": {k: shape(v) for k, v in outputs.items()}, "generates": generates, "trains": trains}


@torch.no_grad()
def make_experience(models: FourModels, prompts: Sequence[Sequence[int]], eos_id: int, cfg: RLHFConfig,
                    kl_coef: float, generator: torch.Generator,
                    verifier: Callable[[int, list[int]], float] | None = None,
                    prompt_index: Sequence[int] | None = None) -> Experience:
    """Sample answers with the actor and score them with the other three models (one PPO batch).

    Records, in ``io``, each model's inputs and outputs (shapes) and whether it generated: only the
    actor's ``generate`` call samples tokens; the others run one forward pass over the finished
    sequences. ``verifier(prompt_index, completion_ids)`` (optional) gives the true 0/1 reward.
    """
    actor, ref, rm, critic = models.actor, models.reference, models.reward, models.critic
    actor.eval()
    critic.eval()
    ids, attn, cmask, n = sample_groups(actor, prompts, cfg.samples_per_prompt, cfg.max_new_tokens,
                                        eos_id, generator=generator)
    comp = ids[:, n:]
    io = [_io_row("actor", {"prompt ids": ids[:, :n]}, {"answer ids": comp}, True, True)]
    logp = token_logprobs(actor, ids, attn, n)
    io.append(_io_row("actor", {"prompt + answer": ids}, {"log-probs": logp}, False, True))
    logp_ref = token_logprobs(ref, ids, attn, n)
    io.append(_io_row("reference", {"prompt + answer": ids}, {"log-probs": logp_ref}, False, False))
    rm_mask = sampled_attention_mask(attn, cmask, n)                 # stop reading at the answer's end
    scores = sequence_scores(rm, ids, rm_mask).float()
    io.append(_io_row("reward", {"prompt + answer": ids}, {"score at last token": scores}, False, False))
    values = token_values(critic, ids, rm_mask)[:, n - 1:-1].float()  # V(prefix before each answer token)
    io.append(_io_row("critic", {"prompt + answer": ids}, {"values": values}, False, True))
    rewards = kl_penalized_rewards(scores, logp, logp_ref, cmask.to(logp.dtype), float(kl_coef))
    adv, ret = token_gae(rewards, values, cmask, cfg.gamma, cfg.lam)
    correct = np.full(len(ids), np.nan)
    if verifier is not None:
        idx = list(prompt_index) if prompt_index is not None else list(range(len(prompts)))
        for k, row in enumerate(comp.tolist()):
            correct[k] = float(verifier(int(idx[k // cfg.samples_per_prompt]), row))
    return Experience(ids, attn, cmask, n, logp, logp_ref, values, scores, rewards, adv, ret, correct, io)


@dataclasses.dataclass
class RLHFRun(Run):
    """A finished PPO-RLHF run: ``config``, ``log``, the trained ``actor`` and ``critic``, the frozen
    ``reference`` and ``reward`` model it ran with, and ``io`` (the first batch's model calls).

    Each row of ``log.updates`` holds ``score`` (the reward model's mean score of the batch's
    answers), ``accuracy`` (the verifier's share of right answers, NaN without a verifier), ``kl``
    (the k1 estimate of KL(actor || reference) summed over an answer's tokens, mean over
    answers), ``kl_coef``, ``policy_loss``, ``value_loss``, ``clip_fraction``, ``approx_kl``
    (between the batch's actor and the updated one), ``explained_variance``, ``length`` (mean answer
    tokens), ``tokens`` (answer tokens generated so far) and ``cpu_s`` (process CPU seconds so far).
    """

    actor: nn.Module
    critic: nn.Module
    reference: nn.Module
    reward: nn.Module
    io: list


def train_rlhf(cfg: RLHFConfig, policy, reward_model, prompts: Sequence[Sequence[int]], eos_id: int,
               verifier: Callable[[int, list[int]], float] | None = None, progress: bool = False) -> RLHFRun:
    """PPO-RLHF (module docstring) from ``policy`` (the SFT model) and a trained ``reward_model``, on
    ``prompts`` (token lists; answers are never given). ``policy`` and ``reward_model`` are copied,
    not changed. Returns an :class:`RLHFRun`."""
    if len(prompts) < cfg.prompts_per_update:
        raise ValueError(f"need at least prompts_per_update={cfg.prompts_per_update} prompts, got {len(prompts)}")
    models = build_four_models(policy, reward_model)
    actor, critic = models.actor, models.critic
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator(device=next(actor.parameters()).device).manual_seed(cfg.seed)
    opt_a = torch.optim.Adam(actor.parameters(), lr=cfg.lr)
    opt_c = torch.optim.Adam(critic.parameters(), lr=cfg.critic_lr)
    ctl = AdaptiveKL(cfg.kl_coef, cfg.kl_target, cfg.kl_horizon)
    log, tokens, cpu0, io = TrainLog(), 0, time.process_time(), []
    with Stopwatch(log):
        for update in progress_bar(range(cfg.updates), enabled=progress, desc="PPO-RLHF"):
            # 1. make experience: the actor samples, the other three models score
            idx = rng.choice(len(prompts), cfg.prompts_per_update, replace=False)
            exp = make_experience(models, [prompts[i] for i in idx], eos_id, cfg, ctl.coef, gen, verifier, idx)
            io = io or exp.io
            m = exp.mask
            adv = exp.advantages
            if cfg.whiten:
                mu, sd = masked_mean(adv, m), masked_mean((adv - masked_mean(adv, m)) ** 2, m).sqrt()
                adv = (adv - mu) / (sd + 1e-8) * m
            # 2. PPO epochs over minibatches: clipped policy loss, clipped value loss
            actor.train()
            critic.train()
            rm_mask = sampled_attention_mask(exp.attn, m, exp.n_prompt)
            B = len(exp.ids)
            for _ in range(cfg.ppo_epochs):
                order = torch.as_tensor(rng.permutation(B))
                for mb in order.chunk(cfg.minibatches):
                    logp = token_logprobs(actor, exp.ids[mb], exp.attn[mb], exp.n_prompt)
                    pl, info = clipped_surrogate(logp, exp.logp[mb], adv[mb], cfg.clip_eps, m[mb])
                    opt_a.zero_grad()
                    pl.backward()
                    torch.nn.utils.clip_grad_norm_(actor.parameters(), cfg.max_grad_norm)
                    opt_a.step()
                    v = token_values(critic, exp.ids[mb], rm_mask[mb])[:, exp.n_prompt - 1:-1]
                    vl = cfg.value_coef * value_loss(v, exp.returns[mb], exp.values[mb], cfg.value_clip, m[mb])
                    opt_c.zero_grad()
                    vl.backward()
                    torch.nn.utils.clip_grad_norm_(critic.parameters(), cfg.max_grad_norm)
                    opt_c.step()
            actor.eval()
            critic.eval()
            # 3. diagnostics; the adaptive controller sees the batch's per-answer KL
            kl_ans = float(((exp.logp - exp.logp_ref) * m).sum(1).mean())
            tokens += int(m.sum())
            ctl_coef = ctl.coef
            ctl.update(kl_ans, B)
            mk = m.bool()
            log.record_update(update + 1, score=float(exp.scores.mean()), accuracy=float(np.mean(exp.correct)),
                              kl=kl_ans, kl_coef=ctl_coef, policy_loss=pl.item(), value_loss=vl.item(),
                              clip_fraction=info["clip_fraction"], approx_kl=info["approx_kl"],
                              explained_variance=explained_variance(exp.values[mk].numpy(),
                                                                    exp.returns[mk].numpy()),
                              length=float(m.sum(1).float().mean()), tokens=tokens,
                              cpu_s=time.process_time() - cpu0)
    return RLHFRun(cfg, log, actor, critic, models.reference, models.reward, io)


# ----------------------------------------------------------------------------- evaluation and the shipped sweep
@torch.no_grad()
def evaluate_policy(policy, reference, reward_model, tokenizer, problems, samples: int = 4, seed: int = 0,
                    max_new_tokens: int = 32, batch_size: int = 32) -> dict:
    """Sample ``samples`` answers per problem from ``policy`` (temperature 1, seeded) and measure on
    them: ``score`` (the reward model's mean normalised score), ``accuracy`` (the verifier's share of
    right answers), ``kl_per_token`` and ``kl_per_answer`` (the exact KL(policy || reference) of the
    next-token distributions, :func:`token_kl_estimates`), and ``hits`` (problems, samples) bools."""
    from lib.align.tasks import encode_prompts
    from lib.data import verify_answer

    probs = list(problems)
    if not probs:
        raise ValueError("need at least one problem")
    dev = next(policy.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    prompts = encode_prompts(tokenizer, probs)
    policy.eval()
    scores, kl_tok, n_tok, kl_ans = [], 0.0, 0, []
    hits = np.zeros((len(probs), samples), dtype=bool)
    for s in range(0, len(probs), batch_size):
        ids, attn, cm, n = sample_groups(policy, prompts[s:s + batch_size], samples, max_new_tokens,
                                         tokenizer.eos_id, generator=gen)
        est = token_kl_estimates(policy, reference, ids, attn, n)
        kl = est["exact"] * cm
        kl_tok, n_tok = kl_tok + float(kl.sum()), n_tok + int(cm.sum())
        kl_ans += kl.sum(1).tolist()
        scores += sequence_scores(reward_model, ids, sampled_attention_mask(attn, cm, n)).tolist()
        for k, row in enumerate(ids[:, n:].tolist()):
            q = s + k // samples
            hits[q, k % samples] = verify_answer(probs[q], tokenizer.decode(row, skip_special_tokens=True))
    return {"score": float(np.mean(scores)), "accuracy": float(hits.mean()), "kl_per_token": kl_tok / max(n_tok, 1),
            "kl_per_answer": float(np.mean(kl_ans)), "hits": hits}


SWEEP_NAME = "rlhf-kl-sweep"
#: KL coefficients of the sweep and its training seeds; the recipe's coefficient (the PPO-RLHF row
#: of the comparison table and the shipped policy) is :data:`RECIPE_COEF` with seed 0.
SWEEP_COEFS = (0.03, 0.1, 0.3)
SWEEP_SEEDS = (0, 1)
RECIPE_COEF = 0.1
SWEEP_CONFIG = RLHFConfig(updates=20, prompts_per_update=16, samples_per_prompt=4, lr=1e-4, critic_lr=1e-4)
#: Evaluations on the 200 held-out questions: 4 answers each for score and KL (sampling seed
#: ``KL_EVAL_SEED + run seed``), greedy and 8 answers each (seed :data:`ACC_EVAL_SEED`) for accuracy.
KL_EVAL_SEED, ACC_EVAL_SEED = 1000, 123
#: GRPO and rejection sampling of the comparison sample as many answers as a PPO-RLHF run.
GRPO_RECIPE = dict(steps=20, prompts_per_step=8, group_size=8, max_new_tokens=32, lr=1e-4, beta=0.04, seed=0)
REJECTION_RECIPE = dict(rounds=4, prompts_per_round=40, samples=8, sft_steps=25, batch_size=16, lr=1e-4)
REJECTION_SEEDS = (0, 1)


def _series(log: TrainLog, names) -> dict:
    return {k: [round(float(x), 6) for x in log.series(k)] for k in names}


def make_artefacts(out=None, progress: bool = True, command: str | None = None, coefs=SWEEP_COEFS,
                   seeds=SWEEP_SEEDS, cfg: RLHFConfig = SWEEP_CONFIG, reward_model=None,
                   smoke: bool = False) -> dict:
    """Make ``data/checkpoints/rlhf-kl-sweep`` (or ``out``): ``results.json`` + ``meta.json`` and
    ``policy/`` (the recipe's trained actor).

    * ``sweep``: PPO-RLHF from the cold start with the shipped reward model, for each KL
      coefficient in ``coefs`` and seed in ``seeds`` (``cfg`` otherwise): the per-update log and the
      held-out evaluation (:func:`evaluate_policy`) of the final actor;
    * ``rejection``: rejection-sampling fine-tuning (:data:`REJECTION_RECIPE`) for each seed of
      :data:`REJECTION_SEEDS`: the per-round log and the held-out evaluation;
    * ``compare``: SFT (the cold start), DPO (``tiny-lm-arith-dpo``), PPO-RLHF (the recipe run),
      GRPO (:data:`GRPO_RECIPE`) and rejection sampling (seed 0) on the held-out questions: greedy
      and sampled hits per question (:func:`lib.align.dpo.held_out_accuracy`), KL to the cold start
      and score, and the compute each spent (answers and tokens sampled, CPU seconds).

    ``reward_model``: a checkpoint name or folder (default the shipped ``reward-model``). ``smoke``:
    a few minutes' check of the whole path (tiny runs, 20 held-out questions), not an artefact.
    """
    from lib import seed_everything
    from lib.align.dpo import held_out_accuracy
    from lib.align.grpo import GRPOConfig, grpo_train
    from lib.align.rejection import RejectionConfig, train_rejection
    from lib.align.reward import REWARD_MODEL, load_reward_model
    from lib.align.sft import COLD_START
    from lib.align.tasks import chain_arithmetic_task, encode_prompts, reward
    from lib.llm.checkpoint import CHECKPOINT_DIR, load_meta, load_model, save_checkpoint
    from lib.llm.tokenizer import load_tokenizer
    from lib.provenance import git_commit, machine, tree_dirty

    out = pathlib.Path(out) if out is not None else CHECKPOINT_DIR / SWEEP_NAME
    torch.set_num_threads(1)
    t0, c0 = time.perf_counter(), time.process_time()
    tok = load_tokenizer()
    task = chain_arithmetic_task()
    cold = load_model(COLD_START)
    rm = load_reward_model(reward_model or REWARD_MODEL).requires_grad_(False)
    grpo_recipe, rej_recipe, rej_seeds = GRPO_RECIPE, REJECTION_RECIPE, REJECTION_SEEDS
    if smoke:
        task = dataclasses.replace(task, held_out=task.held_out[:20])
        grpo_recipe = {**GRPO_RECIPE, "steps": 2}
        rej_recipe = {**REJECTION_RECIPE, "rounds": 2, "prompts_per_round": 8, "sft_steps": 2}
        rej_seeds = rej_seeds[:1]
    prompts = encode_prompts(tok, task.rl_train)
    decode = lambda c: tok.decode(c, skip_special_tokens=True)  # noqa: E731
    verifier = lambda i, c: reward(task.rl_train[i], decode(c))  # noqa: E731
    held = task.held_out

    def kl_eval(model, seed):
        e = evaluate_policy(model, cold, rm, tok, held, samples=4, seed=KL_EVAL_SEED + seed)
        return {k: e[k] for k in ("score", "accuracy", "kl_per_token", "kl_per_answer")}

    results: dict = {"reference": kl_eval(cold, 0), "sweep": [], "rejection": [], "compare": {}}
    trained: dict = {}
    for coef in coefs:
        for seed in seeds:
            seed_everything(seed)
            c = time.process_time()
            run = train_rlhf(dataclasses.replace(cfg, kl_coef=coef, seed=seed), cold, rm, prompts, tok.eos_id,
                             verifier, progress=progress)
            results["sweep"].append({"kl_coef": coef, "seed": seed, "train_cpu_s": time.process_time() - c,
                                     "log": _series(run.log, ("score", "accuracy", "kl", "kl_coef", "tokens",
                                                              "clip_fraction", "explained_variance")),
                                     "final": kl_eval(run.actor, seed)})
            if coef == RECIPE_COEF and seed == 0:
                trained["PPO-RLHF"] = (run.actor, {"answers": cfg.updates * cfg.prompts_per_update *
                                                   cfg.samples_per_prompt, "tokens": int(run.log.series("tokens")[-1]),
                                                   "cpu_s": time.process_time() - c})
    for seed in rej_seeds:
        seed_everything(seed)
        c = time.process_time()
        rcfg = RejectionConfig(**rej_recipe, seed=seed)
        rj = train_rejection(rcfg, cold, rm, prompts, tok.eos_id, tok.pad_id, verifier, progress=progress)
        results["rejection"].append({"seed": seed, "train_cpu_s": time.process_time() - c,
                                     "log": _series(rj.log, ("score", "best_score", "accuracy", "best_accuracy",
                                                             "tokens")),
                                     "final": kl_eval(rj.model, seed)})
        if seed == 0:
            trained["rejection sampling"] = (rj.model, {"answers": rcfg.rounds * rcfg.prompts_per_round * rcfg.samples,
                                                        "tokens": int(rj.log.series("tokens")[-1]),
                                                        "cpu_s": time.process_time() - c})
    seed_everything(0)
    c = time.process_time()
    gcfg = GRPOConfig(**grpo_recipe)
    grpo_model = copy.deepcopy(cold)
    glog = grpo_train(grpo_model, prompts, verifier, tok.eos_id, gcfg, progress=progress).log
    trained["GRPO"] = (grpo_model, {"answers": gcfg.steps * gcfg.prompts_per_step * gcfg.group_size,
                                    "tokens": int(round(float((glog.series("completion_len") * gcfg.prompts_per_step
                                                               * gcfg.group_size).sum()))),
                                    "cpu_s": time.process_time() - c})
    dpo_meta = load_meta("tiny-lm-arith-dpo")
    rows = {"SFT": (cold, {"answers": 0, "tokens": 0, "cpu_s": 0.0}),
            "DPO": (load_model("tiny-lm-arith-dpo"), {"answers": 0, "tokens": 0, "cpu_s": None,
                                                      "wall_s": dpo_meta["metrics"]["train_time_s"]})}
    rows.update({k: trained[k] for k in ("PPO-RLHF", "GRPO", "rejection sampling") if k in trained})
    for name, (model, cost) in rows.items():
        acc = held_out_accuracy(model, tok, task, samples=8, seed=ACC_EVAL_SEED)
        results["compare"][name] = {"greedy_hits": acc["greedy_hits"].astype(int).tolist(),
                                    "hits": acc["hits"].astype(int).tolist(), **kl_eval(model, 0), "compute": cost}
    recipes = {"PPO-RLHF": {**dataclasses.asdict(cfg), "kl_coef": RECIPE_COEF},
               "GRPO": grpo_recipe, "rejection sampling": {**rej_recipe, "seed": 0},
               "DPO": "tiny-lm-arith-dpo (python -m lib.align.dpo): precomputed pairs, no sampling in training",
               "SFT": "tiny-lm-arith-sft (python -m lib.align.sft): the reference of every row"}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results) + "\n")
    common = {"command": command or "python -m lib.align.rlhf", "machine": machine(), "commit": git_commit(),
              "tree_dirty": tree_dirty(), "base": COLD_START, "reward_model": str(reward_model or REWARD_MODEL),
              "task": task.describe()}
    if "PPO-RLHF" in trained:
        save_checkpoint(trained["PPO-RLHF"][0], out / "policy",
                        {"name": f"{SWEEP_NAME}/policy", "seed": 0, "kl_coef": RECIPE_COEF,
                         "train_config": {**dataclasses.asdict(cfg), "kl_coef": RECIPE_COEF},
                         "metrics": {k: v for k, v in results["compare"]["PPO-RLHF"].items()
                                     if k not in ("hits", "greedy_hits")},
                         "description": "the PPO-RLHF actor of the recipe run (seed 0)", **common})
    meta = {"name": SWEEP_NAME, "coefs": list(coefs), "seeds": list(seeds), "recipe_coef": RECIPE_COEF,
            "train_config": dataclasses.asdict(cfg), "recipes": recipes,
            "evaluation": {"kl_and_score": f"4 answers per held-out question, sampling seed {KL_EVAL_SEED} + run seed; "
                                          "exact per-token KL to the cold start (lib.align.rlhf.evaluate_policy)",
                           "accuracy": f"greedy and 8 answers per held-out question (seed {ACC_EVAL_SEED}), "
                                       "lib.align.dpo.held_out_accuracy"},
            "time_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, **common}
    (out / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return {"results": results, "meta": meta}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.align.rlhf",
                                 description="Make Part 8's PPO-RLHF KL sweep and comparison table "
                                             "(data/checkpoints/rlhf-kl-sweep).")
    ap.add_argument("--out", default=None, help="folder (default data/checkpoints/rlhf-kl-sweep)")
    ap.add_argument("--updates", type=int, default=SWEEP_CONFIG.updates, help="PPO updates per sweep run")
    ap.add_argument("--reward-model", default=None, help="reward-model checkpoint (default reward-model)")
    ap.add_argument("--smoke", action="store_true", help="a quick check of the whole path (not an artefact)")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    cfg = dataclasses.replace(SWEEP_CONFIG, updates=a.updates)
    coefs, seeds = (SWEEP_COEFS[1:2], SWEEP_SEEDS[:1]) if a.smoke else (SWEEP_COEFS, SWEEP_SEEDS)
    res = make_artefacts(a.out, progress=not a.no_progress, cfg=cfg, coefs=coefs, seeds=seeds,
                         reward_model=a.reward_model, smoke=a.smoke,
                         command="python -m lib.align.rlhf " + " ".join(argv if argv is not None else sys.argv[1:]))
    for r in res["results"]["sweep"]:
        print(r["kl_coef"], r["seed"], {k: round(v, 3) for k, v in r["final"].items()})
    for k, v in res["results"]["compare"].items():
        print(f"{k:20s} greedy {np.mean(v['greedy_hits']):.3f} sampled {np.mean(v['hits']):.3f} "
              f"kl/token {v['kl_per_token']:.4f} score {v['score']:.3f}")
    print(f"total {res['meta']['time_s']:.0f} s wall, {res['meta']['cpu_s']:.0f} s CPU")
    return 0


__all__ = ["ROLES", "sequence_scores", "token_values", "FourModels", "build_four_models", "same_weights",
           "ActorCritic", "RoleLoRA", "SharedBase", "weight_bytes",
           "token_kl_estimates", "token_gae", "AdaptiveKL", "RLHFConfig",
           "Experience", "make_experience", "RLHFRun", "train_rlhf", "evaluate_policy", "SWEEP_NAME", "SWEEP_COEFS",
           "SWEEP_SEEDS", "RECIPE_COEF", "SWEEP_CONFIG", "KL_EVAL_SEED", "ACC_EVAL_SEED", "GRPO_RECIPE",
           "REJECTION_RECIPE", "REJECTION_SEEDS", "make_artefacts", "main"]


if __name__ == "__main__":
    sys.exit(main())
