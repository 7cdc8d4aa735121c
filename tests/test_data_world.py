"""lib.data.world: the generated world, structured and rendered."""
import pytest

from lib.data import make_world
from lib.data.world import RELATIONS


def test_world_structured_and_rendered():
    w = make_world(0)
    assert w.people == make_world(0).people
    assert len(w.people) == 40 and len(w.cities) == 8
    name = next(iter(w.people))
    for r in RELATIONS:
        assert w.query(name, r) == w.people[name][r]
    assert w.query(w.people[name]["city"], "region") in ("north", "south", "east", "west")
    assert w.people[name]["friend"] != name and w.people[name]["friend"] in w.people
    facts = w.facts()
    assert len(facts) == 40 * len(RELATIONS) + 8
    f = facts[0]
    assert f.value in w.sentence(f) and f.subject in w.sentence(f, "zh")
    assert w.sentence(f, "zh").endswith("。")
    q, a = w.question(f)
    assert q.endswith("?") and f.value in a
    doc = w.document(name)
    assert all(w.people[name][r] in doc for r in RELATIONS)
    assert set(w.documents()) == set(w.people) | set(w.cities)
    with pytest.raises(KeyError):
        w.query("Nobody", "city")
    with pytest.raises(KeyError):
        w.query(name, "height")
    with pytest.raises(ValueError):
        w.sentence(f, "fr")
    with pytest.raises(ValueError):
        make_world(0, n_people=1)
    with pytest.raises(TypeError):
        make_world("a")
