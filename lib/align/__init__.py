"""Alignment of language models: GRPO (and, later, reward models, DPO, PPO-RLHF)."""
