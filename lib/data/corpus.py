"""The book corpus: small, generated, regular text that a ~1M-parameter model can learn.

Four kinds of text, all generated from a seed (no downloads):

* **arithmetic** — multi-step problems such as ``What is 3 + 4 * 2 - 5?`` with a direct
  answer (``The answer is 6.``) and a step-by-step answer
  (``4 * 2 = 8. 3 + 8 = 11. 11 - 5 = 6. The answer is 6.``). Every step is machine-checkable:
  :func:`parse_steps`, :func:`check_steps`, :func:`first_error`, :func:`parse_answer` and
  :func:`verify_answer` are the verifiers later chapters build reward models on.
  :func:`arithmetic_facts` lists all 674 one-step problems; :func:`fact_chain_problems` draws
  multi-step problems made only of such facts (the GRPO section's task).
* **facts** — short sentences (English and Chinese) about a generated :class:`World` of people
  and cities; the world is kept as structured data (:meth:`World.query`, :meth:`World.facts`,
  :meth:`World.document`) for knowledge probing and retrieval.
* **phrases** — English/Chinese phrase pairs (:data:`PHRASES`) so that Chinese tokenisation is
  part of the story.
* **chat** — instruction/response pairs in a messages format (:func:`chat_pairs`) for
  supervised fine-tuning; the pretraining text uses a plain ``Q:``/``A:`` format instead.

:func:`build_corpus` returns the pretraining train/validation splits (lists of documents);
:func:`corpus_stats` counts documents, characters, bytes and (optionally) tokens per kind.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Iterable, Sequence

import numpy as np

# ----------------------------------------------------------------------------- helpers


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int or a numpy Generator, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.default_rng(int(seed))


def _check_count(n, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"{name} must be >= 0, got {n}")
    return int(n)


# ----------------------------------------------------------------------------- arithmetic

OPS = ("+", "-", "*")
_APPLY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
_PREC = {"+": 1, "-": 1, "*": 2}


@dataclasses.dataclass(frozen=True)
class Step:
    """One step ``a op b = result`` of a step-by-step solution (``result`` as written)."""

    a: int
    op: str
    b: int
    result: int

    @property
    def correct_arithmetic(self) -> bool:
        return _APPLY[self.op](self.a, self.b) == self.result

    def __str__(self) -> str:
        return f"{self.a} {self.op} {self.b} = {self.result}"


def _tokens(expression: str) -> list:
    """``"3 + 4 * 2"`` -> ``[3, '+', 4, '*', 2]``; raises ValueError on anything else."""
    if not isinstance(expression, str):
        raise TypeError(f"expression must be a str, got {type(expression).__name__}")
    parts = re.findall(r"\d+|[+\-*]|\S", expression)
    if not parts or len(parts) % 2 == 0:
        raise ValueError(f"not an expression of non-negative integers and + - *: {expression!r}")
    out: list = []
    for i, p in enumerate(parts):
        if i % 2 == 0:
            if not p.isdigit():
                raise ValueError(f"expected a number at position {i} of {expression!r}, got {p!r}")
            out.append(int(p))
        else:
            if p not in OPS:
                raise ValueError(f"expected one of + - * at position {i} of {expression!r}, got {p!r}")
            out.append(p)
    return out


def _eval_tokens(tokens: Sequence) -> int:
    # standard precedence: * first, then + and - from left to right
    vals, ops = [tokens[0]], []
    for op, v in zip(tokens[1::2], tokens[2::2]):
        if op == "*":
            vals[-1] = vals[-1] * v
        else:
            ops.append(op)
            vals.append(v)
    total = vals[0]
    for op, v in zip(ops, vals[1:]):
        total = total + v if op == "+" else total - v
    return total


def evaluate_expression(expression: str) -> int:
    """Value of an expression of non-negative integers with ``+ - *`` (usual precedence).

    A small safe evaluator (no ``eval``): ``evaluate_expression("3 + 4 * 2 - 5") == 6``.
    """
    return _eval_tokens(_tokens(expression))


def _canonical_steps(tokens: list) -> list[Step]:
    """The book's order: leftmost ``*`` first, then ``+``/``-`` left to right."""
    toks = list(tokens)
    steps = []
    while len(toks) > 1:
        ops = toks[1::2]
        j = ops.index("*") if "*" in ops else 0
        i = 2 * j
        a, op, b = toks[i], toks[i + 1], toks[i + 2]
        r = _APPLY[op](a, b)
        steps.append(Step(a, op, b, r))
        toks[i:i + 3] = [r]
    return steps


@dataclasses.dataclass(frozen=True)
class ArithProblem:
    """A multi-step arithmetic problem with its canonical step-by-step solution."""

    expression: str
    answer: int
    steps: tuple[Step, ...]

    @classmethod
    def from_expression(cls, expression: str) -> "ArithProblem":
        toks = _tokens(expression)
        return cls(" ".join(str(t) for t in toks), _eval_tokens(toks), tuple(_canonical_steps(toks)))

    @property
    def question(self) -> str:
        return f"What is {self.expression}?"

    @property
    def direct_answer(self) -> str:
        return f"The answer is {self.answer}."

    @property
    def cot_answer(self) -> str:
        """Step-by-step answer: one ``a op b = c.`` sentence per operation, then the answer."""
        return " ".join(f"{s}." for s in self.steps) + f" The answer is {self.answer}."

    @property
    def n_steps(self) -> int:
        return len(self.steps)


def _random_problem(rng: np.random.Generator, n_ops: int, max_value: int = 999) -> ArithProblem:
    while True:
        ops = [OPS[int(k)] for k in rng.choice(3, size=n_ops, p=[0.4, 0.3, 0.3])]
        nums = []
        for i in range(n_ops + 1):
            near_mul = (i > 0 and ops[i - 1] == "*") or (i < n_ops and ops[i] == "*")
            nums.append(int(rng.integers(2, 10)) if near_mul else int(rng.integers(1, 21)))
        toks: list = [nums[0]]
        for op, v in zip(ops, nums[1:]):
            toks += [op, v]
        prob = ArithProblem.from_expression(" ".join(map(str, toks)))
        if all(0 <= s.result <= max_value for s in prob.steps):
            return prob


def arithmetic_problems(n: int, seed=0, min_ops: int = 1, max_ops: int = 3,
                        exclude: Iterable[str] = ()) -> list[ArithProblem]:
    """``n`` distinct random problems with ``min_ops..max_ops`` operations (operands 1–20,
    2–9 next to ``*``; every intermediate value in ``[0, 999]``).

    ``exclude``: expressions that must not be generated (e.g. the training set's).
    """
    n = _check_count(n)
    rng = _rng(seed)
    if not (1 <= min_ops <= max_ops <= 6):
        raise ValueError(f"need 1 <= min_ops <= max_ops <= 6, got {min_ops}, {max_ops}")
    seen = set(exclude)
    out = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise ValueError(f"could not generate {n} distinct problems; ask for fewer")
        k = int(rng.integers(min_ops, max_ops + 1))
        p = _random_problem(rng, k)
        if p.expression in seen:
            continue
        seen.add(p.expression)
        out.append(p)
    return out


def arithmetic_facts() -> list[ArithProblem]:
    """Every one-operation problem :func:`arithmetic_problems` can produce, in a fixed order: the *facts*.

    ``a + b`` and ``a - b`` with operands 1–20 (``a >= b`` for ``-``, so results are never negative) and
    ``a * b`` with operands 2–9: 400 + 210 + 64 = 674 problems.
    """
    out = [ArithProblem.from_expression(f"{a} + {b}") for a in range(1, 21) for b in range(1, 21)]
    out += [ArithProblem.from_expression(f"{a} - {b}") for a in range(1, 21) for b in range(1, a + 1)]
    out += [ArithProblem.from_expression(f"{a} * {b}") for a in range(2, 10) for b in range(2, 10)]
    return out


def is_fact_chain(problem) -> bool:
    """True when every step of ``problem``'s canonical solution is one of :func:`arithmetic_facts`.

    Such a problem needs no arithmetic beyond the facts: solving it is a matter of *chaining* them in the
    right order (precedence) and carrying each intermediate result forward.
    """
    prob = _as_problem(problem)
    return all(_is_fact(s) for s in prob.steps)


def _is_fact(s: Step) -> bool:
    if s.op == "*":
        return 2 <= s.a <= 9 and 2 <= s.b <= 9
    return 1 <= s.a <= 20 and 1 <= s.b <= 20 and (s.op == "+" or s.a >= s.b)


def fact_chain_problems(n: int, seed=0, n_ops: int = 2, exclude: Iterable[str] = ()) -> list[ArithProblem]:
    """``n`` distinct problems with exactly ``n_ops`` operations whose every step is a fact (:func:`is_fact_chain`).

    Drawn from the same generator as :func:`arithmetic_problems`; ``exclude``: expressions not to generate.
    """
    n = _check_count(n)
    if isinstance(n_ops, bool) or not isinstance(n_ops, (int, np.integer)) or not 2 <= n_ops <= 6:
        raise ValueError(f"n_ops must be an int in [2, 6], got {n_ops!r}")
    rng = _rng(seed)
    seen = set(exclude)
    out: list[ArithProblem] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 200 * n + 1000:
            raise ValueError(f"could not generate {n} distinct fact-chain problems with {n_ops} operations; "
                             "ask for fewer")
        p = _random_problem(rng, int(n_ops))
        if p.expression in seen or not is_fact_chain(p):
            continue
        seen.add(p.expression)
        out.append(p)
    return out


_STEP_RE = re.compile(r"(-?\d+)\s*([+\-*])\s*(-?\d+)\s*=\s*(-?\d+)")
_ANSWER_RE = re.compile(r"answer is\s*(-?\d+)", re.IGNORECASE)


def parse_steps(text: str) -> list[Step]:
    """All ``a op b = c`` steps written in ``text`` (a model's output), in order."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return [Step(int(a), op, int(b), int(c)) for a, op, b, c in _STEP_RE.findall(text)]


def parse_answer(text: str) -> int | None:
    """The number after the last ``answer is`` in ``text``, or ``None`` when there is none."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    found = _ANSWER_RE.findall(text)
    return int(found[-1]) if found else None


def _as_problem(problem) -> ArithProblem:
    if isinstance(problem, ArithProblem):
        return problem
    if isinstance(problem, str):
        return ArithProblem.from_expression(problem)
    raise TypeError(f"problem must be an ArithProblem or an expression string, got {type(problem).__name__}")


def check_steps(problem, solution) -> list[bool]:
    """Label each step of ``solution`` as valid (``True``) or not — a process-level verifier.

    ``problem``: an :class:`ArithProblem` or its expression; ``solution``: a model's output text
    or a list of :class:`Step`. Walking through the expression, a step ``a op b = c`` is valid
    when (1) ``a op b`` really equals ``c`` and (2) ``a op b`` occurs as adjacent operands in the
    current expression and replacing it by its value keeps the expression's value (so the step
    respects precedence: in ``3 + 4 * 2`` the step ``3 + 4 = 7`` is invalid). After a step that
    names adjacent operands, the expression is rewritten with the *written* result, so later
    steps are judged on their own given what came before (use :func:`first_error` for the
    strict "everything after the first mistake is wrong" labels).
    """
    prob = _as_problem(problem)
    steps = parse_steps(solution) if isinstance(solution, str) else list(solution)
    if not all(isinstance(s, Step) for s in steps):
        raise TypeError("solution must be a str or a list of Step")
    toks = _tokens(prob.expression)
    labels = []
    for s in steps:
        target = _eval_tokens(toks)
        where = None
        for i in range(0, len(toks) - 2, 2):
            if toks[i] == s.a and toks[i + 1] == s.op and toks[i + 2] == s.b:
                true = _APPLY[s.op](s.a, s.b)
                if _eval_tokens(toks[:i] + [true] + toks[i + 3:]) == target:
                    where = i
                    break
        labels.append(where is not None and s.correct_arithmetic)
        if where is not None:
            toks = toks[:where] + [s.result] + toks[where + 3:]
    return labels


def first_error(problem, solution) -> int | None:
    """Index of the first invalid step of ``solution`` (see :func:`check_steps`), else ``None``."""
    labels = check_steps(problem, solution)
    return next((i for i, ok in enumerate(labels) if not ok), None)


def verify_answer(problem, solution, require_steps: bool = False) -> bool:
    """Outcome verifier: does the final answer in ``solution`` equal the problem's value?

    With ``require_steps=True`` the solution must also contain exactly the problem's number of
    steps, all valid (:func:`check_steps`), so that a lucky final number does not pass.
    """
    prob = _as_problem(problem)
    if not isinstance(solution, str):
        raise TypeError(f"solution must be a str, got {type(solution).__name__}")
    ok = parse_answer(solution) == prob.answer
    if ok and require_steps:
        labels = check_steps(prob, solution)
        ok = len(labels) == prob.n_steps and all(labels)
    return ok


# ----------------------------------------------------------------------------- the world

JOBS = {"teacher": "老师", "doctor": "医生", "farmer": "农民", "baker": "面包师", "painter": "画家",
        "pilot": "飞行员", "singer": "歌手", "writer": "作家", "nurse": "护士", "driver": "司机"}
PETS = {"cat": "一只猫", "dog": "一只狗", "bird": "一只鸟", "fish": "一条鱼", "rabbit": "一只兔子",
        "horse": "一匹马"}
COLOURS = {"red": "红色", "blue": "蓝色", "green": "绿色", "yellow": "黄色", "black": "黑色",
           "white": "白色", "purple": "紫色", "orange": "橙色"}
REGIONS = {"north": "北部", "south": "南部", "east": "东部", "west": "西部"}

#: The relations of a person in the world, with their value types.
RELATIONS = ("city", "job", "pet", "colour", "age", "friend")

_EN = {
    "city": ["{name} lives in {v}.", "{name}'s home is in {v}.", "{name} is from {v}."],
    "job": ["{name} is a {v}.", "{name} works as a {v}."],
    "pet": ["{name} has a {v}.", "{name}'s pet is a {v}."],
    "colour": ["{name}'s favourite colour is {v}.", "{name} likes the colour {v}."],
    "age": ["{name} is {v} years old."],
    "friend": ["{name}'s best friend is {v}.", "{name} is good friends with {v}."],
    "region": ["{name} is a city in the {v}.", "{name} lies in the {v}."],
}
_ZH = {
    "city": "{name}住在{v}。", "job": "{name}是{v}。", "pet": "{name}有{v}。",
    "colour": "{name}最喜欢的颜色是{v}。", "age": "{name}今年{v}岁。", "friend": "{name}的好朋友是{v}。",
    "region": "{name}是{v}的一个城市。",
}
_QUESTIONS = {
    "city": "Where does {name} live?", "job": "What does {name} do?", "pet": "What pet does {name} have?",
    "colour": "What is {name}'s favourite colour?", "age": "How old is {name}?",
    "friend": "Who is {name}'s best friend?", "region": "Where is {name}?",
}
_ANSWER_TEMPLATE = {"city": 0, "job": 0, "pet": 0, "colour": 0, "age": 0, "friend": 0, "region": 0}

_SYL_A = ["ma", "li", "to", "ren", "sa", "ka", "no", "vi", "da", "mi", "lo", "te", "ra", "ni",
          "bo", "fe", "ja", "ru", "pe", "si", "go", "ha", "zu", "ye"]
_SYL_B = ["la", "ro", "na", "ko", "ta", "mo", "ri", "sa", "ne", "lo", "vi", "da", "n", "r", "s"]
_CITY_A = ["Tar", "Vel", "Mor", "Bel", "Kas", "Lun", "Dor", "Sil", "Fen", "Gal", "Ost", "Pra"]
_CITY_B = ["mo", "ford", "ton", "ia", "wick", "dale", "holm", "vik"]


@dataclasses.dataclass(frozen=True)
class Fact:
    """A (subject, relation, value) triple of the world."""

    subject: str
    relation: str
    value: str


@dataclasses.dataclass
class World:
    """People and cities with attributes: the structured truth behind the fact sentences.

    ``people[name]`` is a dict with keys :data:`RELATIONS`; ``cities[name]`` a dict with key
    ``"region"``. Ages are stored as strings (like every value) so facts are uniform.
    """

    people: dict[str, dict[str, str]]
    cities: dict[str, dict[str, str]]
    seed: int = 0

    def query(self, subject: str, relation: str) -> str:
        """The value of ``relation`` for ``subject`` (a person or a city)."""
        if subject in self.people:
            table = self.people[subject]
        elif subject in self.cities:
            table = self.cities[subject]
        else:
            raise KeyError(f"unknown subject {subject!r}")
        if relation not in table:
            raise KeyError(f"{subject!r} has no relation {relation!r}; it has {sorted(table)}")
        return table[relation]

    def facts(self) -> list[Fact]:
        """Every fact of the world, people first, in a fixed order."""
        out = [Fact(n, r, p[r]) for n, p in self.people.items() for r in RELATIONS]
        out += [Fact(c, "region", d["region"]) for c, d in self.cities.items()]
        return out

    def _facts_cached(self) -> list[Fact]:
        key = (id(self.people), id(self.cities), len(self.people), len(self.cities))
        if getattr(self, "_cache_key", None) != key:
            self._cache = self.facts()
            self._cache_key = key
        return self._cache

    def sentence(self, fact: Fact, lang: str = "en", variant: int = 0) -> str:
        """Render a fact as a sentence (``lang`` ``"en"`` or ``"zh"``; ``variant`` picks a template)."""
        if lang == "en":
            templates = _EN[fact.relation]
            return templates[variant % len(templates)].format(name=fact.subject, v=fact.value)
        if lang == "zh":
            v = fact.value
            v = {"job": JOBS, "pet": PETS, "colour": COLOURS, "region": REGIONS}.get(fact.relation, {}).get(v, v)
            return _ZH[fact.relation].format(name=fact.subject, v=v)
        raise ValueError(f"lang must be 'en' or 'zh', got {lang!r}")

    def question(self, fact: Fact) -> tuple[str, str]:
        """A (question, answer sentence) pair about ``fact``."""
        return _QUESTIONS[fact.relation].format(name=fact.subject), self.sentence(fact, "en", 0)

    def document(self, subject: str, lang: str = "en") -> str:
        """All facts about one subject as a short paragraph (a retrieval passage)."""
        facts = [f for f in self.facts() if f.subject == subject]
        if not facts:
            raise KeyError(f"unknown subject {subject!r}")
        return ("" if lang == "zh" else " ").join(self.sentence(f, lang) for f in facts)

    def documents(self, lang: str = "en") -> dict[str, str]:
        """``{subject: document}`` for every person and city."""
        return {s: self.document(s, lang) for s in list(self.people) + list(self.cities)}


def make_world(seed=0, n_people: int = 40, n_cities: int = 8) -> World:
    """A random world of ``n_people`` people living in ``n_cities`` cities (deterministic)."""
    n_people, n_cities = _check_count(n_people, "n_people"), _check_count(n_cities, "n_cities")
    if not 2 <= n_people <= 200 or not 1 <= n_cities <= 40:
        raise ValueError(f"need 2 <= n_people <= 200 and 1 <= n_cities <= 40, got {n_people}, {n_cities}")
    rng = _rng(seed)
    cities: dict[str, dict[str, str]] = {}
    while len(cities) < n_cities:
        c = str(rng.choice(_CITY_A)) + str(rng.choice(_CITY_B))
        cities.setdefault(c, {"region": str(rng.choice(list(REGIONS)))})
    names: list[str] = []
    while len(names) < n_people:
        n = (str(rng.choice(_SYL_A)) + str(rng.choice(_SYL_B))).capitalize()
        if len(n) >= 3 and n not in names and n not in cities:
            names.append(n)
    people = {}
    for i, n in enumerate(names):
        friend = names[(i + 1 + int(rng.integers(n_people - 1))) % n_people]
        people[n] = {
            "city": str(rng.choice(list(cities))),
            "job": str(rng.choice(list(JOBS))),
            "pet": str(rng.choice(list(PETS))),
            "colour": str(rng.choice(list(COLOURS))),
            "age": str(int(rng.integers(18, 71))),
            "friend": friend,
        }
    return World(people, cities, seed=int(seed) if not isinstance(seed, np.random.Generator) else -1)


# ----------------------------------------------------------------------------- phrases

#: English/Chinese phrase pairs.
PHRASES: tuple[tuple[str, str], ...] = (
    ("hello", "你好"), ("good morning", "早上好"), ("good night", "晚安"), ("thank you", "谢谢"),
    ("you are welcome", "不客气"), ("goodbye", "再见"), ("how are you", "你好吗"),
    ("I am fine", "我很好"), ("what is your name", "你叫什么名字"), ("my name is Mila", "我叫米拉"),
    ("I like tea", "我喜欢茶"), ("I like coffee", "我喜欢咖啡"), ("the sky is blue", "天空是蓝色的"),
    ("the grass is green", "草是绿色的"), ("the sun is hot", "太阳很热"), ("the moon is bright", "月亮很亮"),
    ("it is raining", "下雨了"), ("it is cold today", "今天很冷"), ("it is hot today", "今天很热"),
    ("I am hungry", "我饿了"), ("I am tired", "我累了"), ("let us go", "我们走吧"),
    ("see you tomorrow", "明天见"), ("happy birthday", "生日快乐"), ("happy new year", "新年快乐"),
    ("I love you", "我爱你"), ("where is the station", "车站在哪里"), ("how much is it", "多少钱"),
    ("please sit down", "请坐"), ("please wait", "请稍等"), ("I do not know", "我不知道"),
    ("I understand", "我明白了"), ("one", "一"), ("two", "二"), ("three", "三"), ("four", "四"),
    ("five", "五"), ("six", "六"), ("seven", "七"), ("eight", "八"), ("nine", "九"), ("ten", "十"),
    ("cat", "猫"), ("dog", "狗"), ("bird", "鸟"), ("fish", "鱼"), ("horse", "马"), ("rabbit", "兔子"),
    ("red", "红色"), ("blue", "蓝色"), ("green", "绿色"), ("yellow", "黄色"), ("black", "黑色"),
    ("white", "白色"), ("water", "水"), ("fire", "火"), ("mountain", "山"), ("river", "河"),
    ("city", "城市"), ("friend", "朋友"), ("teacher", "老师"), ("doctor", "医生"), ("book", "书"),
    ("language model", "语言模型"), ("machine learning", "机器学习"), ("reinforcement learning", "强化学习"),
    ("large language model", "大语言模型"), ("reward", "奖励"), ("policy", "策略"), ("token", "词元"),
)


# ----------------------------------------------------------------------------- chat pairs


def _fact_items(world: World, rng: np.random.Generator):
    facts = world._facts_cached()
    f = facts[int(rng.integers(len(facts)))]
    return f


def chat_pairs(n: int, seed=0, world: World | None = None,
               tasks: Sequence[str] = ("arithmetic", "arithmetic_direct", "fact", "translate", "describe"),
               exclude_expressions: Iterable[str] = ()) -> list[dict]:
    """``n`` instruction/response pairs for supervised fine-tuning.

    Each item is ``{"task": str, "messages": [{"role": "user", "content": ...},
    {"role": "assistant", "content": ...}]}`` (plus ``"problem"`` for arithmetic tasks, the
    :class:`ArithProblem`). Tasks: ``arithmetic`` (step by step), ``arithmetic_direct``
    (answer only), ``fact`` (a question about the world), ``translate`` (English <-> Chinese),
    ``describe`` (everything about one person).
    """
    n = _check_count(n)
    rng = _rng(seed)
    world = world if world is not None else make_world(0)
    known = {"arithmetic", "arithmetic_direct", "fact", "translate", "describe"}
    tasks = list(tasks)
    if not tasks or not set(tasks) <= known:
        raise ValueError(f"tasks must be a non-empty subset of {sorted(known)}, got {tasks}")
    seen = set(exclude_expressions)
    out = []
    for _ in range(n):
        task = tasks[int(rng.integers(len(tasks)))]
        item: dict = {"task": task}
        if task in ("arithmetic", "arithmetic_direct"):
            (p,) = arithmetic_problems(1, rng, min_ops=1, max_ops=3, exclude=seen)
            seen.add(p.expression)
            item["problem"] = p
            if task == "arithmetic":
                user = p.question + " Think step by step."
                bot = p.cot_answer
            else:
                user = p.question + " Give only the answer."
                bot = p.direct_answer
        elif task == "fact":
            f = _fact_items(world, rng)
            user, bot = world.question(f)
        elif task == "translate":
            en, zh = PHRASES[int(rng.integers(len(PHRASES)))]
            if rng.random() < 0.5:
                user, bot = f"Translate to Chinese: {en}", zh
            else:
                user, bot = f"Translate to English: {zh}", en
        else:  # describe
            name = list(world.people)[int(rng.integers(len(world.people)))]
            user, bot = f"Tell me about {name}.", world.document(name)
        item["messages"] = [{"role": "user", "content": user}, {"role": "assistant", "content": bot}]
        out.append(item)
    return out


# ----------------------------------------------------------------------------- pretraining corpus


@dataclasses.dataclass
class Corpus:
    """Pretraining documents. ``train``/``val`` are lists of documents (strings) and
    ``train_kinds``/``val_kinds`` say which generator made each one."""

    train: list[str]
    val: list[str]
    train_kinds: list[str]
    val_kinds: list[str]
    world: World
    seed: int

    def text(self, split: str = "train", sep: str = "\n\n") -> str:
        """One string of a split's documents joined by ``sep`` (a training loop will usually
        put an end-of-text token between documents instead)."""
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        return sep.join(self.train if split == "train" else self.val)

    def sha256(self) -> str:
        """Fingerprint of both splits (recorded in the tokenizer's sidecar)."""
        h = hashlib.sha256()
        for doc in self.train + ["\x00split\x00"] + self.val:
            h.update(doc.encode("utf-8"))
            h.update(b"\x00")
        return h.hexdigest()


def _fact_doc(world: World, rng: np.random.Generator) -> str:
    """A few English facts (random people, relations and templates) in one paragraph."""
    facts = world._facts_cached()
    idx = rng.choice(len(facts), size=int(rng.integers(3, 7)), replace=False)
    return " ".join(world.sentence(facts[i], "en", int(rng.integers(3))) for i in idx)


def _person_doc(world: World, rng: np.random.Generator) -> str:
    name = list(world.people)[int(rng.integers(len(world.people)))]
    lang = "zh" if rng.random() < 0.25 else "en"
    facts = [f for f in world._facts_cached() if f.subject == name]
    order = rng.permutation(len(facts))
    sep = "" if lang == "zh" else " "
    return sep.join(world.sentence(facts[i], lang, int(rng.integers(3))) for i in order)


def _qa_doc(world: World, rng: np.random.Generator) -> str:
    facts = world._facts_cached()
    lines = []
    for i in rng.choice(len(facts), size=int(rng.integers(1, 4)), replace=False):
        q, a = world.question(facts[i])
        lines.append(f"Q: {q}\nA: {a}")
    return "\n".join(lines)


def _arith_doc(p: ArithProblem, rng: np.random.Generator) -> str:
    answer = p.cot_answer if rng.random() < 0.7 else p.direct_answer
    return f"Q: {p.question}\nA: {answer}"


def _phrase_doc(rng: np.random.Generator) -> str:
    lines = []
    for i in rng.choice(len(PHRASES), size=int(rng.integers(1, 4)), replace=False):
        en, zh = PHRASES[i]
        lines.append(f"English: {en}\nChinese: {zh}" if rng.random() < 0.5 else f"Chinese: {zh}\nEnglish: {en}")
    return "\n".join(lines)


#: Documents per kind in the training split (the validation split is ``val_fraction`` of it).
DEFAULT_MIX = {"arithmetic": 9000, "facts": 3500, "person": 1500, "qa": 2500, "phrases": 2000}


def build_corpus(seed: int = 0, scale: float = 1.0, val_fraction: float = 0.05,
                 world: World | None = None) -> Corpus:
    """The pretraining corpus: train/validation documents, shuffled, from ``seed``.

    ``scale`` multiplies the document counts of :data:`DEFAULT_MIX` (``scale=1`` gives about
    1.3 M characters of training text). The world is ``make_world(seed)`` unless given.
    Validation arithmetic problems never occur in the training split; facts are about the
    same world (the model is meant to learn them).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not isinstance(scale, (int, float)) or not 0 < scale <= 10:
        raise ValueError(f"scale must be in (0, 10], got {scale!r}")
    if not 0 < val_fraction < 0.5:
        raise ValueError(f"val_fraction must be in (0, 0.5), got {val_fraction!r}")
    world = world if world is not None else make_world(seed)
    rng = np.random.default_rng([int(seed), 2024])
    splits = {}
    used_expr: set[str] = set()
    for split, frac in (("train", 1.0), ("val", val_fraction)):
        docs, kinds = [], []
        for kind, count in DEFAULT_MIX.items():
            k = max(1, int(round(count * scale * frac)))
            if kind == "arithmetic":
                probs = arithmetic_problems(k, rng, exclude=used_expr)
                used_expr.update(p.expression for p in probs)
                docs += [_arith_doc(p, rng) for p in probs]
            elif kind == "facts":
                docs += [_fact_doc(world, rng) for _ in range(k)]
            elif kind == "person":
                docs += [_person_doc(world, rng) for _ in range(k)]
            elif kind == "qa":
                docs += [_qa_doc(world, rng) for _ in range(k)]
            else:
                docs += [_phrase_doc(rng) for _ in range(k)]
            kinds += [kind] * k
        order = rng.permutation(len(docs))
        splits[split] = ([docs[i] for i in order], [kinds[i] for i in order])
    return Corpus(splits["train"][0], splits["val"][0], splits["train"][1], splits["val"][1], world, int(seed))


def corpus_stats(corpus: Corpus | None = None, tokenizer=None) -> dict:
    """Statistics per split and kind: documents, characters, UTF-8 bytes, CJK characters and,
    when ``tokenizer`` (anything with ``encode(str) -> list[int]``) is given, tokens.

    Returns ``{"train": {"all": {...}, "<kind>": {...}}, "val": {...}}``.
    """
    corpus = corpus if corpus is not None else build_corpus(0)
    if not isinstance(corpus, Corpus):
        raise TypeError(f"corpus must be a Corpus, got {type(corpus).__name__}")
    cjk = re.compile(r"[\u4e00-\u9fff]")
    out: dict = {}
    for split, docs, kinds in (("train", corpus.train, corpus.train_kinds), ("val", corpus.val, corpus.val_kinds)):
        table: dict = {}
        for kind in ["all"] + sorted(set(kinds)):
            sel = [d for d, k in zip(docs, kinds) if kind == "all" or k == kind]
            row = {
                "documents": len(sel),
                "characters": sum(len(d) for d in sel),
                "bytes": sum(len(d.encode("utf-8")) for d in sel),
                "cjk_characters": sum(len(cjk.findall(d)) for d in sel),
            }
            if tokenizer is not None:
                row["tokens"] = sum(len(tokenizer.encode(d)) for d in sel)
                row["bytes_per_token"] = row["bytes"] / max(row["tokens"], 1)
            table[kind] = row
        out[split] = table
    return out


__all__ = [
    "ArithProblem", "Corpus", "Fact", "PHRASES", "RELATIONS", "Step", "World", "arithmetic_problems",
    "build_corpus", "chat_pairs", "check_steps", "corpus_stats", "evaluate_expression", "first_error",
    "make_world", "parse_answer", "parse_steps", "verify_answer", "DEFAULT_MIX",
]
