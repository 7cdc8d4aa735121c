import re

from lib import provenance


def test_commit_is_a_hash_in_the_checkout():
    c = provenance.git_commit()
    assert c == "unknown" or re.fullmatch(r"[0-9a-f]{40}", c)
    assert isinstance(provenance.tree_dirty(), bool)


def test_machine_reports_cpu_cores_load_and_versions():
    m = provenance.machine()
    assert m["cpu"] and m["nproc"] >= 1 and m["threads"] >= 1
    assert isinstance(m["loadavg"], list) and len(m["loadavg"]) in (0, 3)
    assert m["torch"] and m["python"].count(".") >= 1


def test_git_outside_a_repository_says_unknown(tmp_path):
    assert provenance.git("rev-parse", "HEAD", cwd=tmp_path) == "unknown"
