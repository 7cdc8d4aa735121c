"""Reinforcement learning: returns, tabular methods, value- and policy-based agents.

One module per concept; import from the module (``from lib.rl.returns import discounted_returns``).
"""
