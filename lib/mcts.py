"""Monte Carlo tree search, written once for any small state protocol.

A *state* offers ``to_play() -> int``, ``legal_actions() -> sequence``, ``apply(a) -> state``,
``is_terminal() -> bool`` and, at a terminal state, ``terminal_value() -> float`` (its value
for the player to move). Two-player zero-sum games flip the sign of a value between players;
a one-player problem (search over reasoning steps) always has ``to_play() == 0`` and nothing
flips. Each iteration runs the four steps of Kocsis & Szepesvári's UCT and Coulom's MCTS:

1. **selection**: from the root, follow the child with the best score while the node is fully
   expanded — UCT, ``Q + c sqrt(ln N_parent / N)``, or AlphaZero's PUCT,
   ``Q + c P sqrt(N_parent) / (1 + N)`` with a prior ``P``;
2. **expansion**: UCT adds one untried child; PUCT adds all children of the leaf at once with
   their priors;
3. **simulation**: the value of the new node — a uniformly random rollout to the end of the
   game, or an ``evaluator(state) -> (priors, value)`` (a value network, a reward model);
4. **backup**: every node on the path gains a visit and the value, signed for the player who
   moved into it.

Every node keeps ``N`` (visits), ``W`` (summed value for the player who chose the move into
it), ``n_leaf`` (iterations that ended at it): ``N = n_leaf + sum of the children's N`` always
holds, and :func:`tree_violations` checks it.

Book: seed-96, seed-97
"""
from __future__ import annotations

import dataclasses
import math
import random
from typing import Callable

from lib.runs import check_choice, check_int, check_positive


@dataclasses.dataclass
class MCTSConfig:
    """Settings of one search.

    simulations: iterations per search (tic-tac-toe: 25 to a few thousand; AlphaGo Zero used
        1600 per move).
    c: exploration constant; UCT's classic value is sqrt(2) for values in [-1, 1] (Kocsis &
        Szepesvári 2006), PUCT typically 1 to 2.5 (Silver et al. 2017).
    selection: "uct" (one child expanded per iteration, random rollouts unless an evaluator
        is given) or "puct" (all children expanded with the evaluator's priors).
    seed: seed of the search's own random stream (expansion order, rollouts).
    """

    simulations: int = 400
    c: float = math.sqrt(2.0)
    selection: str = "uct"
    seed: int = 0

    def __post_init__(self):
        check_int(self, "simulations", minimum=1)
        check_positive(self, "c")
        check_choice(self, "selection", ("uct", "puct"))
        check_int(self, "seed", minimum=0)


class Node:
    """One node of the tree: the state reached, how (``action`` from ``parent``), and its
    statistics. ``Q`` is the mean value for the player who moved into the node."""

    __slots__ = ("state", "parent", "action", "prior", "children", "untried", "N", "W",
                 "n_leaf", "id")

    def __init__(self, state, parent=None, action=None, prior=1.0, id=0):
        self.state, self.parent, self.action, self.prior = state, parent, action, prior
        self.children: dict = {}
        self.untried = list(state.legal_actions())
        self.N, self.W, self.n_leaf, self.id = 0, 0.0, 0, id

    @property
    def Q(self) -> float:
        return self.W / self.N if self.N else 0.0

    def nodes(self):
        """This node and every node below it, depth first."""
        stack = [self]
        while stack:
            n = stack.pop()
            yield n
            stack.extend(reversed(list(n.children.values())))


@dataclasses.dataclass
class Iteration:
    """What one iteration did: the selected path (node ids, root first), the node expanded
    (None if the path ended at a terminal node or, for PUCT, ``-1`` children added), the
    simulated value and the player it is for, and the path's values after the backup."""

    path: list
    expanded: int | None
    value: float
    player: int
    rollout: list


@dataclasses.dataclass
class SearchResult:
    """The root's statistics after a search, and the tree itself (for drawing)."""

    root: Node
    actions: list
    visits: list
    q: list
    snapshots: dict
    iterations: list

    def best_action(self):
        """The most visited move (ties: higher Q, then the first in ``legal_actions``)."""
        k = max(range(len(self.actions)), key=lambda i: (self.visits[i], self.q[i], -i))
        return self.actions[k]


class MCTS:
    """The search, one step per method, so that a page can run and draw them one at a time."""

    def __init__(self, root_state, cfg: MCTSConfig, evaluator: Callable | None = None):
        if not isinstance(cfg, MCTSConfig):
            raise TypeError(f"cfg must be an MCTSConfig, got {type(cfg).__name__}")
        if cfg.selection == "puct" and evaluator is None:
            evaluator = uniform_rollout_evaluator(cfg.seed)
        for name in ("to_play", "legal_actions", "apply", "is_terminal", "terminal_value"):
            if not callable(getattr(root_state, name, None)):
                raise TypeError(f"root_state must offer {name}() (see lib.mcts), "
                                f"{type(root_state).__name__} does not")
        self.cfg, self.evaluator = cfg, evaluator
        self.rng = random.Random(cfg.seed)
        self.root = Node(root_state)
        self.n_nodes = 1
        if cfg.selection == "puct":
            self.root.untried = []  # PUCT expands a node's children when it is first evaluated

    # 1. selection ------------------------------------------------------------------------
    def score(self, parent: Node, child: Node) -> float:
        c = self.cfg.c
        if self.cfg.selection == "uct":
            return child.Q + c * math.sqrt(math.log(parent.N) / child.N)
        return child.Q + c * child.prior * math.sqrt(parent.N) / (1 + child.N)

    def select(self) -> list:
        node, path = self.root, [self.root]
        while not node.untried and node.children:
            node = max(node.children.values(), key=lambda ch: self.score(node, ch))
            path.append(node)
        return path

    # 2. expansion ------------------------------------------------------------------------
    def _child(self, node: Node, action, prior=1.0) -> Node:
        child = Node(node.state.apply(action), node, action, prior, id=self.n_nodes)
        self.n_nodes += 1
        node.children[action] = child
        return child

    def expand(self, path: list):
        """UCT: add one untried child (chosen at random) and append it to ``path``. PUCT: a
        leaf visited for the first time gets all its children, with the evaluator's priors."""
        leaf = path[-1]
        if leaf.state.is_terminal():
            return None, None
        if self.cfg.selection == "uct":
            if not leaf.untried:
                return None, None
            a = leaf.untried.pop(self.rng.randrange(len(leaf.untried)))
            child = self._child(leaf, a)
            path.append(child)
            return child, None
        priors, value = self.evaluator(leaf.state)
        acts = list(leaf.state.legal_actions())
        priors = _as_priors(priors, acts)
        for a, p in zip(acts, priors):
            self._child(leaf, a, p)
        leaf.untried = []  # expanded: selection now descends through it
        return None, value

    # 3. simulation -----------------------------------------------------------------------
    def simulate(self, node: Node) -> tuple:
        """The value of ``node``'s state for its player to move, and the rollout's moves."""
        s = node.state
        if s.is_terminal():
            return float(s.terminal_value()), []
        if self.evaluator is not None and self.cfg.selection == "uct":
            return float(self.evaluator(s)[1]), []
        player, moves = s.to_play(), []
        while not s.is_terminal():
            acts = s.legal_actions()
            a = acts[self.rng.randrange(len(acts))]
            moves.append(a)
            s = s.apply(a)
        v = float(s.terminal_value())
        return (v if s.to_play() == player else -v), moves

    # 4. backup ---------------------------------------------------------------------------
    @staticmethod
    def backup(path: list, value: float, player: int) -> None:
        """Add one visit and ``value`` (for ``player``) to every node of ``path``, each
        signed for the player who moved into the node (the root's W uses its own mover)."""
        path[-1].n_leaf += 1
        for node in path:
            node.N += 1
            mover = node.parent.state.to_play() if node.parent else node.state.to_play()
            node.W += value if mover == player else -value

    def iterate(self) -> Iteration:
        """One iteration of the four steps."""
        path = self.select()
        child, value = self.expand(path)
        leaf = path[-1]
        rollout = []
        if value is None:
            value, rollout = self.simulate(leaf)
        player = leaf.state.to_play()
        self.backup(path, float(value), player)
        return Iteration([n.id for n in path], None if child is None else child.id,
                         float(value), player, rollout)

    def result(self, snapshots=None, iterations=None) -> SearchResult:
        kids = sorted(self.root.children.values(), key=lambda k: _order(k.action))
        return SearchResult(self.root, [k.action for k in kids], [k.N for k in kids],
                            [k.Q for k in kids], snapshots or {}, iterations or [])


def search(root_state, cfg: MCTSConfig, evaluator: Callable | None = None, *,
           snapshot_at=(), record: bool = False) -> SearchResult:
    """Run ``cfg.simulations`` iterations from ``root_state``.

    ``snapshot_at``: iteration counts at which to record the root's ``{action: (N, Q)}``
    (an anytime view of one search); ``record``: keep every :class:`Iteration`.
    """
    if root_state.is_terminal():
        raise ValueError("search needs a non-terminal root state")
    marks = sorted({int(k) for k in snapshot_at})
    if any(k < 1 or k > cfg.simulations for k in marks):
        raise ValueError(f"snapshot_at must lie in [1, simulations={cfg.simulations}], "
                         f"got {marks}")
    tree = MCTS(root_state, cfg, evaluator)
    snaps, its = {}, []
    marks_set = set(marks)
    for i in range(1, cfg.simulations + 1):
        it = tree.iterate()
        if record:
            its.append(it)
        if i in marks_set:
            snaps[i] = {a: (ch.N, ch.Q) for a, ch in tree.root.children.items()}
    return tree.result(snaps, its)


def uniform_rollout_evaluator(seed: int = 0) -> Callable:
    """An evaluator without knowledge: uniform priors and one random rollout's value."""
    rng = random.Random(seed)

    def evaluate(state):
        player, s = state.to_play(), state
        while not s.is_terminal():
            acts = s.legal_actions()
            s = s.apply(acts[rng.randrange(len(acts))])
        v = float(s.terminal_value())
        n = len(state.legal_actions())
        return [1.0 / n] * n, (v if s.to_play() == player else -v)

    return evaluate


def _as_priors(priors, acts) -> list:
    if isinstance(priors, dict):
        priors = [float(priors.get(a, 0.0)) for a in acts]
    priors = [float(p) for p in priors]
    if len(priors) != len(acts):
        raise ValueError(f"evaluator returned {len(priors)} priors for {len(acts)} legal actions")
    if any(p < 0 or not math.isfinite(p) for p in priors) or sum(priors) <= 0:
        raise ValueError(f"priors must be finite, non-negative and not all zero, got {priors}")
    z = sum(priors)
    return [p / z for p in priors]


def uct_score(q: float, n_parent: int, n: int, c: float) -> float:
    """UCT's score of a child: ``q + c * sqrt(ln n_parent / n)`` (needs ``n >= 1``)."""
    if n < 1 or n_parent < n:
        raise ValueError(f"expected 1 <= n <= n_parent, got n={n}, n_parent={n_parent}")
    return q + c * math.sqrt(math.log(n_parent) / n)


def puct_score(q: float, prior: float, n_parent: int, n: int, c: float) -> float:
    """PUCT's score of a child: ``q + c * prior * sqrt(n_parent) / (1 + n)``."""
    if n < 0 or n_parent < n or not 0 <= prior <= 1:
        raise ValueError(f"expected 0 <= n <= n_parent and prior in [0, 1], got n={n}, "
                         f"n_parent={n_parent}, prior={prior}")
    return q + c * prior * math.sqrt(n_parent) / (1 + n)


def tree_violations(root: Node, iterations: list | None = None) -> list:
    """What is inconsistent in a tree (empty when all is right).

    Always: ``N = n_leaf + sum of the children's N`` at every node. With the recorded
    ``iterations`` of the whole search: each node's N is the number of paths through it and
    its W the sum of those paths' values, each signed for the node's mover.
    """
    out = []
    by_id = {}
    for n in root.nodes():
        by_id[n.id] = n
        s = n.n_leaf + sum(c.N for c in n.children.values())
        if n.N != s:
            out.append(f"node {n.id}: N={n.N} but n_leaf + children's N = {s}")
    if iterations is not None:
        N = {i: 0 for i in by_id}
        W = {i: 0.0 for i in by_id}
        for it in iterations:
            for nid in it.path:
                node = by_id[nid]
                mover = node.parent.state.to_play() if node.parent else node.state.to_play()
                N[nid] += 1
                W[nid] += it.value if mover == it.player else -it.value
        for nid, node in by_id.items():
            if node.N != N[nid] or abs(node.W - W[nid]) > 1e-9:
                out.append(f"node {nid}: N={node.N}, W={node.W} but the recorded paths give "
                           f"N={N[nid]}, W={W[nid]}")
    return out


def _order(a):
    return (0, a, "") if isinstance(a, (int, float)) else (1, 0, repr(a))


def mcts_player(cfg: MCTSConfig, evaluator: Callable | None = None,
                key: Callable = repr) -> Callable:
    """A player ``state -> action`` that searches with ``cfg`` and plays the most visited
    move. Its random stream is seeded from ``cfg.seed`` and ``key(state)`` (CRC-32), so the
    same position always gets the same move: a match against it is a tree of lines, not a
    sample."""
    import zlib

    memo = {}

    def play(state):
        k = key(state)
        if k not in memo:
            seed = (cfg.seed * 1_000_003 + zlib.crc32(k.encode())) % (2**32)
            memo[k] = search(state, dataclasses.replace(cfg, seed=seed), evaluator).best_action()
        return memo[k]

    play.memo = memo
    return play


@dataclasses.dataclass
class LineReport:
    """Outcomes, for the searched player, of every line of a match against an opponent who
    may play any of a set of moves: counts of wins/draws/losses and one losing line (if any)."""

    wins: int
    draws: int
    losses: int
    losing_line: list | None

    @property
    def lines(self) -> int:
        return self.wins + self.draws + self.losses


def all_lines(state, player: Callable, replies: Callable, me: int) -> LineReport:
    """Play ``player`` (as player ``me``) from ``state`` against *every* move in
    ``replies(state)`` of the opponent, exhaustively (a two-player game)."""
    if me not in (0, 1):
        raise ValueError(f"me must be player 0 or 1, got {me!r}")
    counts = [0, 0, 0]
    losing = []

    def walk(s, line):
        if s.is_terminal():
            v = s.terminal_value() if s.to_play() == me else -s.terminal_value()
            counts[0 if v > 0 else (1 if v == 0 else 2)] += 1
            if v < 0 and not losing:
                losing.append(list(line))
            return
        if s.to_play() == me:
            a = player(s)
            walk(s.apply(a), line + [a])
        else:
            moves = sorted(replies(s), key=_order)
            if not moves:
                raise ValueError(f"replies gave no move at a non-terminal state {s!r}")
            for a in moves:
                walk(s.apply(a), line + [a])

    walk(state, [])
    return LineReport(counts[0], counts[1], counts[2], losing[0] if losing else None)


def tree_layout(root: Node, max_depth: int | None = None, min_visits: int = 0) -> dict:
    """Positions for drawing: ``{node id: (x, depth)}`` of the nodes with at least
    ``min_visits`` visits down to ``max_depth``; leaves of the drawn tree sit at x = 0, 1, …
    in the order of their actions and each parent above the middle of its children."""
    if min_visits < 0:
        raise ValueError(f"min_visits must be >= 0, got {min_visits}")
    pos, nxt = {}, [0]

    def place(n, d):
        kids = [] if (max_depth is not None and d >= max_depth) else [
            c for _, c in sorted(n.children.items(), key=lambda kv: _order(kv[0]))
            if c.N >= min_visits]
        if not kids:
            pos[n.id] = (float(nxt[0]), d)
            nxt[0] += 1
            return
        xs = [place(c, d + 1) or pos[c.id][0] for c in kids]
        pos[n.id] = ((xs[0] + xs[-1]) / 2, d)

    place(root, 0)
    return pos
