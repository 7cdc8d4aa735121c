"""Small board games with exact solvers, used by the search chapters (MCTS, AlphaZero).

Book: seed-96, seed-97
"""
