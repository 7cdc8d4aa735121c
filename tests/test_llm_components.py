"""lib.llm.components: exact FFN parameter parity, SwiGLU activations captured equal to a
direct computation, the gate ablation, and the shipped sweep reloads and reproduces."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lib.llm import components as C
from lib.llm.config import LMConfig
from lib.llm.model import TinyLM


def _tiny():
    torch.manual_seed(0)
    cfg = LMConfig(vocab_size=64, d_model=24, n_layers=2, n_heads=2, n_kv_heads=1, d_ff=64,
                   max_seq_len=16)
    return TinyLM(cfg).eval()


def test_parameter_parity_is_exact_for_multiples_of_three():
    for d in (3, 24, 48, 129):
        p = C.ffn_parameter_counts(d)
        assert p["relu"]["params"] == p["gelu"]["params"] == p["swiglu"]["params"] == 8 * d * d
    p = C.ffn_parameter_counts(128)          # not a multiple of 3: close, not equal
    assert abs(p["swiglu"]["params"] - 8 * 128 * 128) <= 3 * 128


def test_activations_equal_a_direct_computation_and_ablation():
    model = _tiny()
    ids = torch.randint(0, 64, (2, 10), generator=torch.Generator().manual_seed(1))
    acts = C.swiglu_activations(model, ids)
    assert len(acts) == 2
    # block 0's FFN input computed by hand: embed -> block's attention half -> norm
    with torch.no_grad():
        captured = {}
        h = model.layers[0].mlp.register_forward_hook(
            lambda m, i, o: captured.update(x=i[0].reshape(-1, i[0].shape[-1])))
        model(ids)
        h.remove()
        mlp = model.layers[0].mlp
        gate = F.silu(mlp.gate_proj(captured["x"]))
        torch.testing.assert_close(acts[0]["gate"], gate)
        torch.testing.assert_close(acts[0]["hidden"], gate * mlp.up_proj(captured["x"]))
    base, frozen = C.gate_ablation_loss(model, ids, ids.roll(-1, 1))
    assert np.isfinite(base) and np.isfinite(frozen) and base != frozen
    # the hooks are gone: the model computes its original loss again
    assert C.gate_ablation_loss(model, ids, ids.roll(-1, 1))[0] == pytest.approx(base)
    assert 0 <= C.gate_open_share(acts[0]["gate"]) <= 1


def test_validation_errors():
    model = _tiny()
    with pytest.raises(ValueError, match="integer"):
        C.swiglu_activations(model, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="shape of ids"):
        C.gate_ablation_loss(model, torch.zeros(2, 3, dtype=torch.long),
                             torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="layers"):
        C.swiglu_activations(torch.nn.Linear(2, 2), torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="threshold"):
        C.gate_open_share(torch.ones(3), 0)
    with pytest.raises(ValueError, match="kind"):
        C.sweep_table({"metrics": {"runs": []}}, "norm")


def test_shipped_sweep_reloads_and_reproduces_its_check_losses():
    from lib.llm.pretrain import corpus_token_ids
    from lib.llm.variants import load_variant

    meta = C.load_sweep()
    assert meta["command"] == "python -m lib.llm.components"
    val = corpus_token_ids("val")
    for name, recorded in meta["check"]["losses"].items():
        model = load_variant(C.SWEEP_NAME, name)
        assert C.check_loss(model, val) == pytest.approx(recorded, abs=1e-4)
    table = C.sweep_table(meta, "ffn")
    assert set(table) == {"relu", "gelu", "swiglu"}
    assert all(len(v) == len(meta["seeds"]) for v in table.values())
    placement = C.sweep_table(meta, "placement")
    assert set(placement) == {f"{p}-{d}" for p in ("pre", "post")
                              for d in meta["placement_depths"]}
