"""Alignment of language models.

* :mod:`lib.align.sft` — completion-only supervised fine-tuning; makes the cold-start checkpoint
  ``tiny-lm-arith-sft`` (``python -m lib.align.sft``).
* :mod:`lib.align.tasks` — verifiable-reward tasks: fact-chaining arithmetic with disjoint SFT / RL / held-out
  splits, its reward, evaluation (greedy and sampled accuracy) and error classification.
* :mod:`lib.align.grpo` — Group Relative Policy Optimization.

Later chapters add reward models, DPO and PPO-RLHF here.
"""
