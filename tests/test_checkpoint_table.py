"""The one checkpoint table (tools/checkpoints.py): every shipped artefact has a row, every row's
recipe lives in lib, and every artefact's sidecar records the command of its row."""
import json
import pathlib
import shlex
import sys

import pytest

import lib

ROOT = lib.ROOT
sys.path.insert(0, str(ROOT / "tools"))
import checkpoints  # noqa: E402


def _module(cmd: str) -> str:
    argv = shlex.split(cmd)
    return argv[argv.index("-m") + 1]


def test_rows_are_unique_and_their_recipes_live_in_lib():
    names = [a.name for a in checkpoints.TABLE]
    assert len(names) == len(set(names))
    outputs = [o for a in checkpoints.TABLE for o in a.outputs]
    assert len(outputs) == len(set(outputs))
    for a in checkpoints.TABLE:
        for cmd in a.commands:
            assert cmd.startswith("python -m lib."), f"{a.name}: recipe outside lib: {cmd}"
        assert a.threads in (1, 2)


def test_every_shipped_artefact_has_a_row():
    outputs = {o for a in checkpoints.TABLE for o in a.outputs}
    shipped = {f"data/checkpoints/{p.name}" for p in (ROOT / "data" / "checkpoints").iterdir() if p.is_dir()}
    shipped.add("data/tokenizer")
    assert shipped - outputs == set(), f"artefacts without a row in tools/checkpoints.py: {shipped - outputs}"
    assert outputs - shipped == set(), f"rows whose artefacts are missing: {outputs - shipped}"


@pytest.mark.parametrize("row", checkpoints.TABLE, ids=lambda a: a.name)
def test_sidecar_records_the_rows_command(row):
    path = ROOT / row.sidecar
    assert path.is_file(), f"{row.name}: no sidecar {row.sidecar}"
    meta = json.loads(path.read_text(encoding="utf-8"))
    recorded = meta.get("command")
    assert isinstance(recorded, str) and recorded, f"{row.sidecar} records no command"
    # An artefact made before its recipe became a lib command records the command that made it
    # and, in ``regenerate_with``, the row's command that reproduces it (with a note saying why).
    if "regenerate_with" in meta:
        assert meta.get("regenerate_note"), f"{row.sidecar}: regenerate_with needs a regenerate_note"
        recorded = meta["regenerate_with"]
    assert _module(recorded) == _module(row.commands[-1]), (recorded, row.commands[-1])


def test_list_and_unknown_rows(capsys):
    assert checkpoints.main(["--list"]) == 0
    assert "tiny-lm-tools" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        checkpoints.main(["--only", "no-such-artefact"])
