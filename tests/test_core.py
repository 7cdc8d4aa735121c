"""lib core: seeding, device choice, glue, plain-number conversion."""
import random

import numpy as np
import pytest
import torch

import lib


def test_seed_everything_makes_all_generators_repeat():
    lib.seed_everything(123)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    lib.seed_everything(123)
    b = (random.random(), np.random.rand(), torch.rand(1).item())
    assert a == b


def test_seed_everything_returns_seed_and_accepts_numpy_ints(monkeypatch):
    monkeypatch.delenv(lib.SEED_SHIFT_ENV, raising=False)
    assert lib.seed_everything(np.int64(7)) == 7
    assert lib.seed_everything(0) == 0


@pytest.mark.parametrize("bad", [-1, 2**32])
def test_seed_everything_rejects_out_of_range(bad):
    with pytest.raises(ValueError, match="seed must be in"):
        lib.seed_everything(bad)


@pytest.mark.parametrize("bad", [1.5, "3", None, True])
def test_seed_everything_rejects_non_integers(bad):
    with pytest.raises(TypeError, match="seed must be an int"):
        lib.seed_everything(bad)


def test_device_is_cpu_without_cuda(monkeypatch):
    monkeypatch.delenv("BOOK_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert lib.device().type == expected
    assert lib.device("cpu").type == "cpu"


def test_device_validates_choice(monkeypatch):
    with pytest.raises(ValueError, match="'cpu' or 'cuda'"):
        lib.device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            lib.device("cuda")
    monkeypatch.setenv("BOOK_DEVICE", "cpu")
    assert lib.device().type == "cpu"


def _capture_glue(monkeypatch):
    """Replace myst-nb's glue by a recorder; returns the dict it fills."""
    import myst_nb

    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=False: seen.update({name: value}))
    return seen


def test_glue_records_plain_numbers_and_returns_none(monkeypatch):
    seen = _capture_glue(monkeypatch)
    assert lib.glue("x", 3) is None               # a cell ending in glue(...) prints nothing
    lib.glue("y", np.float64(0.25))
    assert type(seen["y"]) is float and seen["y"] == 0.25
    lib.glue("z", torch.tensor(2.0))
    assert type(seen["z"]) is float
    arr = np.array([1.0, 2.0])
    lib.glue("w", arr)
    assert seen["w"] is arr                       # arrays are left alone
    with pytest.raises(ValueError, match="identifier"):
        lib.glue("not a name", 1)


def test_glue_without_myst_nb(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "myst_nb":
            raise ImportError("no myst_nb here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    assert lib.glue("v", 5) is None


def test_seed_shift_moves_every_seed(monkeypatch):
    monkeypatch.setenv(lib.SEED_SHIFT_ENV, "3")
    assert lib.seed_shift() == 3
    assert lib.seed_everything(0) == 3
    a = np.random.rand()
    monkeypatch.delenv(lib.SEED_SHIFT_ENV)
    assert lib.seed_everything(3) == 3 and np.random.rand() == a
    assert lib.seed_shift() == 0


@pytest.mark.parametrize("bad", ["-1", "two", "1.5"])
def test_seed_shift_rejects_bad_values(monkeypatch, bad):
    monkeypatch.setenv(lib.SEED_SHIFT_ENV, bad)
    with pytest.raises(ValueError, match="non-negative integer"):
        lib.seed_everything(0)


def test_seed_shift_keeps_the_range(monkeypatch):
    monkeypatch.setenv(lib.SEED_SHIFT_ENV, "2")
    with pytest.raises(ValueError, match="at most"):
        lib.seed_everything(2**32 - 2)


def test_paths():
    assert (lib.ROOT / "lib" / "__init__.py").is_file()
    assert (lib.DATA_DIR / "seed-map.yml").is_file()


def test_progress_bar_obeys_tqdm_disable(monkeypatch, capsys):
    # regression: passing disable=False to tqdm overrode TQDM_DISABLE, leaving bars on the built pages
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert list(lib.progress(range(3), enabled=True, desc="x")) == [0, 1, 2]
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("TQDM_DISABLE")
    assert list(lib.progress(range(3), enabled=False)) == [0, 1, 2]
    assert capsys.readouterr().err == ""
    list(lib.progress(range(3), enabled=True, desc="shown"))
    assert "shown" in capsys.readouterr().err
