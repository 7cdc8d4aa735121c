"""Alignment of language models.

* :mod:`lib.align.sft` — completion-only supervised fine-tuning; makes the cold-start checkpoint
  ``tiny-lm-arith-sft`` (``python -m lib.align.sft``).
* :mod:`lib.align.tasks` — verifiable-reward tasks: fact-chaining arithmetic with disjoint SFT / RL / held-out
  splits, its reward, evaluation (greedy and sampled accuracy) and error classification.
* :mod:`lib.align.grpo` — Group Relative Policy Optimization.
* :mod:`lib.align.preference` — preference pairs from the model's own answers judged by the verifier
  (prompt collection, dedup, clustering, stratified sampling, label noise).
* :mod:`lib.align.dpo` — DPO, IPO and DPO + SFT: losses, reference log-probs, training, per-pair
  gradients, exact KL along samples, RLHF-vs-DPO costs (``python -m lib.align.dpo``).
* :mod:`lib.align.rlhf` — PPO-RLHF: the four models, dual head, four roles on one base, per-token KL,
  token-level GAE, the training loop, the KL sweep and comparison table (``python -m lib.align.rlhf``).
* :mod:`lib.align.rejection` — rejection-sampling fine-tuning (best-of-N by the reward model, SFT).
* :mod:`lib.align.reward` — the reward model: structure, last-token scores, Bradley–Terry training,
  metrics, normalisation, the per-token RLHF reward (``python -m lib.align.reward``).
* :mod:`lib.align.rlaif` — RLAIF labels, Constitutional AI's critic / reviser / checker, rule-based rewards.
* :mod:`lib.align.prm` — outcome and process reward models: exact and Math-Shepherd step labels, training,
  PRM-guided step search, best-of-N reranking (``python -m lib.align.prm``).
* :mod:`lib.align.bestofn` — best-of-N (verifier / reward model) and majority vote, exact estimators of
  accuracy vs N from one sampled pool, best-of-N KL (``python -m lib.align.bestofn``).
* :mod:`lib.align.step_search` — MCTS over reasoning steps (nodes are sentences of the model), pluggable leaf
  values, the tree drawn, accuracy against model calls (``python -m lib.align.step_search``).
* :mod:`lib.align.cot_distill` — CoT distillation: teacher traces, the verifier's rejection-sampling filter,
  students on filtered / unfiltered / answer-only data, paired held-out tests (``python -m lib.align.cot_distill``).
"""
