"""The pretrained base checkpoints (data/checkpoints/tiny-lm, tiny-lm-moe) reload and reproduce their recorded
metrics. (Checkpoints that later chapters derive from them are tested by those chapters' own test files.)"""
import pytest
import torch

from lib.llm.checkpoint import CHECKPOINT_DIR, file_sha256, load_model
from lib.llm.pretrain import PRESETS, corpus_token_ids, tokenizer_sha256
from lib.llm.train import evaluate_loss



NAMES = sorted(PRESETS)  # the checkpoints made by `python -m lib.llm.pretrain --preset <name>`


@pytest.fixture(scope="module")
def val_ids():
    return corpus_token_ids("val")


def test_the_base_models_are_shipped():
    assert set(NAMES) == {"tiny-lm", "tiny-lm-moe"}
    for name in NAMES:
        assert (CHECKPOINT_DIR / name / "model.safetensors").is_file() and (CHECKPOINT_DIR / name / "meta.json").is_file()


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_reproduces_recorded_val_loss(name, val_ids):
    model, meta = load_model(name, with_meta=True)
    assert meta["tokenizer_sha256"] == tokenizer_sha256(), "the tokenizer changed since this checkpoint was trained"
    assert meta["weights_sha256"] == file_sha256(CHECKPOINT_DIR / name / "model.safetensors")
    assert meta["corpus"]["val_tokens"] == val_ids.numel(), "the corpus changed since this checkpoint was trained"
    for key in ("seed", "command", "history", "train_config", "config", "metrics"):
        assert key in meta
    seq_len = meta["train_config"]["seq_len"]
    n_eval = meta["train_config"]["eval_windows"]
    # the run's last periodic evaluation (first eval_windows windows), recorded rounded to 1e-5
    quick = evaluate_loss(model, val_ids, seq_len, max_windows=n_eval)
    assert abs(quick - meta["history"]["val_loss"][-1]) < 1e-4
    if not model.config.is_moe:  # the headline metric: the whole validation split (the MoE one is slower)
        full = evaluate_loss(model, val_ids, seq_len)
        assert abs(full - meta["metrics"]["val_loss"]) < 1e-4
    assert meta["metrics"]["val_loss"] < 1.2


# ------------------------------------------------------------------ corrupted checkpoints are refused clearly

def _copy(tmp_path, name="tiny-lm"):
    import shutil

    dst = tmp_path / name
    shutil.copytree(CHECKPOINT_DIR / name, dst)
    return dst


def test_bit_flipped_weights_are_refused(tmp_path):
    folder = _copy(tmp_path)
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-5] ^= 0x01                                   # one bit of one weight
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"model\.safetensors: its SHA-256 is not the weights_sha256"):
        load_model(folder)


def test_corrupt_files_are_named_in_the_error(tmp_path):
    import json

    folder = _copy(tmp_path)
    (folder / "meta.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"meta\.json: not valid JSON"):
        load_model(folder)
    (folder / "meta.json").write_text(json.dumps({"seed": 0}))
    with pytest.raises(ValueError, match=r"meta\.json: no 'config' object"):
        load_model(folder)
    good = json.loads((CHECKPOINT_DIR / "tiny-lm" / "meta.json").read_text())
    good.pop("weights_sha256")
    (folder / "meta.json").write_text(json.dumps(good))
    (folder / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"model\.safetensors: not a readable safetensors file"):
        load_model(folder)
