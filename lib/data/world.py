"""A generated world of people and cities, kept as structured data.

Short sentences (English and Chinese) about it are part of the pretraining corpus; the
structured form (:meth:`World.query`, :meth:`World.facts`, :meth:`World.document`) serves
knowledge probing, fine-tuning tasks, retrieval and tool calls.

Book: seed-8 (pretraining corpus), seed-9 (fine-tuning task), seed-31 (RAG), seed-32 (function calling).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .common import as_rng, check_count


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
    n_people, n_cities = check_count(n_people, "n_people"), check_count(n_cities, "n_cities")
    if not 2 <= n_people <= 200 or not 1 <= n_cities <= 40:
        raise ValueError(f"need 2 <= n_people <= 200 and 1 <= n_cities <= 40, got {n_people}, {n_cities}")
    rng = as_rng(seed)
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


__all__ = ["JOBS", "PETS", "COLOURS", "REGIONS", "RELATIONS", "Fact", "World", "make_world"]
