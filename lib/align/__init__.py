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

Later chapters add reward models and PPO-RLHF here.
"""
