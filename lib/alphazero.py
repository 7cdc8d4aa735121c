"""AlphaZero in miniature: a policy-value network and PUCT search teach each other by
self-play on tic-tac-toe.

Each iteration (Silver et al. 2017, 2018) plays ``games_per_iteration`` games of the network
against itself, choosing every move by a PUCT search (:mod:`lib.mcts`) whose priors and leaf
values come from the network; it records, for every position played, the search's visit
distribution ``pi`` and the game's final result ``z`` for the player to move; then it trains
the network on ``cross-entropy(pi, p) + (z - v)^2`` over the last few iterations' positions.
The search is the policy improvement operator, the network its memory.

Tic-tac-toe has 5478 reachable positions, so the network is evaluated on all of them at once
after each update and the search reads its priors and values from that table (the same
numbers a per-leaf call would give, much faster). The exact solver of
:mod:`lib.games.tictactoe` measures progress without noise: the share of positions where the
raw network's top move, or the search's chosen move, is minimax-optimal; games against fixed
opponents (random, and a one-ply tactician that wins or blocks when it can) give the score.

Book: seed-101
"""
from __future__ import annotations

import dataclasses
import random

import numpy as np

from lib.games import tictactoe as T
from lib.mcts import MCTSConfig, mcts_player, search
from lib.runs import Run, Stopwatch, TrainLog, check_int, check_positive, check_range


@dataclasses.dataclass
class AlphaZeroConfig:
    """Settings of the self-play loop (defaults: about 15 s on one CPU core, evaluations included).

    iterations: self-play + training rounds (AlphaGo Zero: ~700k updates; here 6-20 rounds).
    games_per_iteration: self-play games per round.
    simulations: PUCT iterations per move in self-play and evaluation (AlphaGo Zero: 1600).
    c_puct: PUCT exploration constant (1-2.5 typical).
    temperature_moves: the first plies of a self-play game sample a move in proportion to
        the visits (exploration); later ones play the most visited move.
    dirichlet_alpha, noise_fraction: the root's priors in self-play are mixed with this share
        of Dirichlet(alpha) noise, so that every move gets tried (AlphaZero: 0.03 for Go,
        0.3 for chess, fraction 0.25).
    window: train on the positions of the last ``window`` rounds (a replay buffer).
    epochs, batch_size, lr, weight_decay: Adam on the buffer after each round.
    hidden: width of the two hidden layers of the network.
    eval_every: evaluate after every ``eval_every`` rounds (and before the first).
    eval_simulations: PUCT iterations per move of the searching player in evaluations.
    eval_positions: positions (drawn once) on which the search's accuracy is measured.
    eval_games: games against each fixed opponent per evaluation (half as X, half as O).
    """

    seed: int = 0
    iterations: int = 10
    games_per_iteration: int = 24
    simulations: int = 32
    c_puct: float = 1.5
    temperature_moves: int = 9
    dirichlet_alpha: float = 0.5
    noise_fraction: float = 0.25
    window: int = 4
    epochs: int = 3
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    hidden: int = 64
    eval_every: int = 2
    eval_simulations: int = 128
    eval_positions: int = 600
    eval_games: int = 20

    def __post_init__(self):
        check_int(self, "iterations", "games_per_iteration", "simulations", "window", "epochs",
                  "batch_size", "hidden", "eval_every", "eval_positions", "eval_simulations")
        check_int(self, "seed", "temperature_moves", minimum=0)
        check_int(self, "eval_games", minimum=2)
        check_positive(self, "c_puct", "lr")
        check_range(self, "weight_decay", 0.0, 1.0)
        check_positive(self, "dirichlet_alpha")
        check_range(self, "noise_fraction", 0.0, 1.0)


class PolicyValueNet:
    """Factory for the torch module (kept lazy so that importing this module needs no torch)."""

    def __new__(cls, hidden: int = 64):
        import torch.nn as nn

        class _Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(nn.Linear(18, hidden), nn.ReLU(),
                                          nn.Linear(hidden, hidden), nn.ReLU())
                self.policy = nn.Linear(hidden, 9)
                self.value = nn.Linear(hidden, 1)

            def forward(self, x):
                h = self.body(x.flatten(1))
                return self.policy(h), self.value(h).squeeze(-1).tanh()

        return _Net()


_POS = None


def _symmetries() -> list:
    """The 8 symmetries of the board as permutations of the squares 0..8."""
    grid = np.arange(9).reshape(3, 3)
    out = []
    for k in range(4):
        r = np.rot90(grid, k)
        out += [r.ravel(), np.fliplr(r).ravel()]
    return out


SYMMETRIES = _symmetries()


def _positions():
    """All non-terminal reachable positions, their encodings and legal masks (cached)."""
    global _POS
    if _POS is None:
        pos = [s for s in T.reachable_positions() if not s.is_terminal()]
        x = np.stack([s.encode() for s in pos])
        legal = np.zeros((len(pos), 9), dtype=bool)
        for i, s in enumerate(pos):
            legal[i, list(s.legal_actions())] = True
        opt = np.zeros((len(pos), 9), dtype=bool)
        for i, s in enumerate(pos):
            opt[i, list(T.optimal_moves(s))] = True
        _POS = (pos, {s: i for i, s in enumerate(pos)}, x, legal, opt)
    return _POS


def network_table(net) -> dict:
    """``{position: (priors over its legal moves, value for the mover)}`` for every
    non-terminal position, from one batched forward pass."""
    import torch

    pos, _, x, legal, _ = _positions()
    with torch.no_grad():
        logits, v = net(torch.from_numpy(x))
    logits = logits.masked_fill(~torch.from_numpy(legal), -1e9)
    p = torch.softmax(logits, -1).numpy()
    v = v.numpy()
    return {s: ([float(p[i, a]) for a in s.legal_actions()], float(v[i]))
            for i, s in enumerate(pos)}


def raw_accuracy(net) -> float:
    """Share of the non-terminal positions where some move is a mistake on which the
    network's top legal move is minimax-optimal."""
    import torch

    pos, _, x, legal, opt = _positions()
    keep = opt.sum(1) < legal.sum(1)
    with torch.no_grad():
        logits, _ = net(torch.from_numpy(x))
    top = logits.masked_fill(~torch.from_numpy(legal), -1e9).argmax(-1).numpy()
    return float(opt[np.arange(len(pos)), top][keep].mean())


def tactician(seed: int):
    """A fixed opponent: wins at once if it can, blocks the opponent's immediate win if it
    must, otherwise plays uniformly at random (its own random stream)."""
    rng = random.Random(seed)

    def play(s):
        acts = s.legal_actions()
        for a in acts:
            if s.apply(a).winner() is not None:
                return a
        for a in acts:  # a square on which the opponent would complete a line
            b = list(s.board)
            b[a] = 1 - s.to_play()
            if T._winner(tuple(b)) is not None:
                return a
        return acts[rng.randrange(len(acts))]

    return play


def random_player(seed: int):
    rng = random.Random(seed)
    return lambda s: s.legal_actions()[rng.randrange(len(s.legal_actions()))]


def play_game(x_player, o_player) -> float:
    """Result for X (+1, 0, -1) of one game."""
    s = T.TicTacToe()
    while not s.is_terminal():
        s = s.apply((x_player if s.to_play() == 0 else o_player)(s))
    w = s.winner()
    return 0.0 if w is None else (1.0 if w == 0 else -1.0)


def match_score(player, opponent_factory, games: int, seed: int) -> float:
    """Mean score (win 1, draw 1/2, loss 0) of ``player`` over ``games`` games against fresh
    opponents ``opponent_factory(seed)``, half as X and half as O."""
    total = 0.0
    for g in range(games):
        opp = opponent_factory(seed + g)
        if g % 2 == 0:
            r = play_game(player, opp)
        else:
            r = -play_game(opp, player)
        total += (r + 1) / 2
    return total / games


@dataclasses.dataclass
class AlphaZeroRun(Run):
    """The trained network and the evaluation history (``log.updates``: losses per round;
    ``history``: one row per evaluation)."""

    net: object
    history: list


def _search_player(table, cfg: AlphaZeroConfig, seed: int):
    def evaluate(state):
        return table[state]

    return mcts_player(MCTSConfig(simulations=cfg.eval_simulations, c=cfg.c_puct,
                                  selection="puct", seed=seed), evaluate)


def _raw_player(table):
    def play(s):
        pri = table[s][0]
        return s.legal_actions()[int(np.argmax(pri))]

    return play


def evaluate(net, cfg: AlphaZeroConfig, eval_pos: list, seed: int) -> dict:
    """Raw network and network + search: exact accuracy and scores against the fixed
    opponents."""
    table = network_table(net)
    search_p, raw_p = _search_player(table, cfg, seed), _raw_player(table)
    _, _, _, _, opt = _positions()
    index = _positions()[1]
    hits = [search_p(s) in np.flatnonzero(opt[index[s]]) for s in eval_pos]
    raw_hits = [raw_p(s) in np.flatnonzero(opt[index[s]]) for s in eval_pos]
    row = {"raw_accuracy": raw_accuracy(net), "raw_accuracy_sample": float(np.mean(raw_hits)),
           "search_accuracy_sample": float(np.mean(hits))}
    for name, opp in (("random", random_player), ("tactician", tactician)):
        row[f"raw_vs_{name}"] = match_score(raw_p, opp, cfg.eval_games, seed + 7)
        row[f"search_vs_{name}"] = match_score(search_p, opp, cfg.eval_games, seed + 7)
    return row


def visit_distribution(visits, temperature: float = 1.0) -> np.ndarray:
    """AlphaZero's move distribution from root visit counts: proportional to
    ``N ** (1 / temperature)``; ``temperature = 0`` puts all mass on the most visited move
    (the first one on ties)."""
    n = np.asarray(visits, dtype=np.float64)
    if n.ndim != 1 or n.size == 0 or np.any(n < 0) or n.sum() <= 0:
        raise ValueError(f"visits must be a non-empty 1-D array of counts, not all 0, got {visits}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        out = np.zeros_like(n)
        out[int(np.argmax(n))] = 1.0
        return out
    w = (n / n.max()) ** (1.0 / temperature)
    return w / w.sum()


def self_play_game(table, cfg: AlphaZeroConfig, rng: random.Random) -> list:
    """One self-play game: ``[(position, pi over 9 squares, z for the mover)]``."""
    s, rows, ply = T.TicTacToe(), [], 0
    while not s.is_terminal():
        pri, val = table[s]
        noise = np.random.default_rng(rng.randrange(2**31)).dirichlet(
            [cfg.dirichlet_alpha] * len(pri))
        eps = cfg.noise_fraction
        root_entry = ([(1 - eps) * p + eps * float(n) for p, n in zip(pri, noise)], val)
        root = s

        def evaluate(st, root=root, root_entry=root_entry):
            return root_entry if st is root else table[st]

        r = search(s, MCTSConfig(simulations=cfg.simulations, c=cfg.c_puct, selection="puct",
                                 seed=rng.randrange(2**31)), evaluate)
        pi = np.zeros(9, dtype=np.float32)
        pi[r.actions] = visit_distribution(r.visits, 1.0)
        if ply < cfg.temperature_moves:  # temperature 1: sample in proportion to visits
            a = rng.choices(r.actions, weights=r.visits)[0]
        else:  # temperature 0: the most visited move
            a = r.best_action()
        rows.append((s, pi))
        s, ply = s.apply(a), ply + 1
    w = s.winner()
    return [(st, pi, 0.0 if w is None else (1.0 if w == st.to_play() else -1.0))
            for st, pi in rows]


def train_alphazero(cfg: AlphaZeroConfig, progress: bool = False) -> AlphaZeroRun:
    """The self-play loop; see the module docstring."""
    import torch

    if not isinstance(cfg, AlphaZeroConfig):
        raise TypeError(f"cfg must be an AlphaZeroConfig, got {type(cfg).__name__}")
    from lib import progress as _progress

    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    net = PolicyValueNet(cfg.hidden)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    pos, _, _, legal, optm = _positions()
    pool = [s for i, s in enumerate(pos) if optm[i].sum() < legal[i].sum()]
    eval_pos = random.Random(cfg.seed + 1).sample(pool, cfg.eval_positions)
    log, history, buffer = TrainLog(), [], []
    with Stopwatch(log):
        history.append({"iteration": 0, **evaluate(net, cfg, eval_pos, cfg.seed + 1000)})
        for it in _progress(range(1, cfg.iterations + 1), enabled=progress, desc="self-play"):
            net.eval()
            table = network_table(net)
            games = [self_play_game(table, cfg, rng) for _ in range(cfg.games_per_iteration)]
            buffer.append([row for g in games for row in g])
            buffer = buffer[-cfg.window:]
            data = [row for chunk in buffer for row in chunk]
            # every position in its 8 symmetric forms (the game's rules do not change)
            xs = np.stack([s.encode().reshape(2, 9) for s, _, _ in data])
            ps = np.stack([p for _, p, _ in data])
            ms = np.stack([legal_mask(s) for s, _, _ in data])
            x = torch.from_numpy(np.concatenate([xs[:, :, q] for q in SYMMETRIES]))
            pi = torch.from_numpy(np.concatenate([ps[:, q] for q in SYMMETRIES]))
            mask = torch.from_numpy(np.concatenate([ms[:, q] for q in SYMMETRIES]))
            z = torch.tensor([v for _, _, v in data] * len(SYMMETRIES), dtype=torch.float32)
            net.train()
            g = torch.Generator().manual_seed(cfg.seed * 7919 + it)
            pl = vl = 0.0
            for _ in range(cfg.epochs):
                perm = torch.randperm(len(z), generator=g)
                for k in range(0, len(z), cfg.batch_size):
                    b = perm[k:k + cfg.batch_size]
                    logits, v = net(x[b])
                    logp = torch.log_softmax(logits.masked_fill(~mask[b], -1e9), -1)
                    p_loss = -(pi[b] * logp.clamp_min(-1e4)).sum(-1).mean()
                    v_loss = ((z[b] - v) ** 2).mean()
                    opt.zero_grad()
                    (p_loss + v_loss).backward()
                    opt.step()
                    pl, vl = p_loss.item(), v_loss.item()
            net.eval()
            log.record_update(it, policy_loss=pl, value_loss=vl, positions=len(data),
                              x_score=float(np.mean([g[0][2] for g in games])))
            if it % cfg.eval_every == 0 or it == cfg.iterations:
                history.append({"iteration": it,
                                **evaluate(net, cfg, eval_pos, cfg.seed + 1000)})
    return AlphaZeroRun(cfg, log, net, history)


def legal_mask(s) -> np.ndarray:
    m = np.zeros(9, dtype=bool)
    m[list(s.legal_actions())] = True
    return m
