"""Cross-checks of lib.peft against Hugging Face PEFT on the HF export of the model.

LoRA, prefix tuning and prompt tuning: trainable-parameter counts equal the closed-form formula
and PEFT's own count; lib's trained tensors copied into PEFT's modules give the same logits.
"""
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

from lib.llm.config import LMConfig  # noqa: E402
from lib.llm.export import export_hf  # noqa: E402
from lib.llm.model import TinyLM  # noqa: E402
from lib.peft.lora import inject_lora, lora_layers, merge_lora  # noqa: E402
from lib.peft.methods import count_trainable, trainable_formula  # noqa: E402
from lib.peft.prefix import PrefixTuning, PromptTuning  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

CFG = dict(vocab_size=97, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=64)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    torch.manual_seed(0)
    ours = TinyLM(LMConfig(**CFG)).eval()
    folder = export_hf(ours, tmp_path_factory.mktemp("hf"))
    return ours, folder


def _hf(folder):
    return transformers.LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def _peft_trainable(pm) -> int:
    return pm.get_nb_trainable_parameters()[0]


@pytest.mark.parametrize("targets", [("q_proj", "v_proj"), ("q_proj", "k_proj", "v_proj", "o_proj", "down_proj")])
def test_lora_counts_and_logits_equal_peft(pair, targets):
    import copy

    base, folder = pair
    r, alpha = 4, 8
    ours = copy.deepcopy(base)
    inject_lora(ours, r=r, alpha=alpha, targets=targets)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in lora_layers(ours).values():
            m.lora_B.copy_(torch.randn(m.lora_B.shape, generator=g) * 0.2)
    cfg = peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets), lora_dropout=0.0,
                          bias="none", task_type="CAUSAL_LM")
    pm = peft.get_peft_model(_hf(folder), cfg).eval()
    assert _peft_trainable(pm) == count_trainable(ours) == trainable_formula("lora", base.config, r=r,
                                                                                 targets=targets)
    inner = pm.base_model.model.model
    with torch.no_grad():
        for name, m in lora_layers(ours).items():
            hf_mod = inner.get_submodule(name)
            hf_mod.lora_A["default"].weight.copy_(m.lora_A)
            hf_mod.lora_B["default"].weight.copy_(m.lora_B)
        ids = torch.randint(0, 97, (3, 20), generator=g)
        theirs = pm(ids).logits
        mine = ours(ids).logits
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=0)
        assert (mine - base(ids).logits).abs().max() > 1e-3          # the update matters
        merge_lora(ours)
        merged_theirs = pm.merge_and_unload()(ids).logits
        torch.testing.assert_close(ours(ids).logits, merged_theirs, atol=1e-5, rtol=0)


def test_prefix_tuning_counts_and_logits_equal_peft(pair):
    base, folder = pair
    P = 5
    ours = PrefixTuning(base, n_virtual=P, init_std=0.5)
    pm = peft.get_peft_model(_hf(folder), peft.PrefixTuningConfig(task_type="CAUSAL_LM",
                                                                    num_virtual_tokens=P)).eval()
    cfg = base.config
    assert _peft_trainable(pm) == count_trainable(ours) == trainable_formula("prefix", cfg, n_virtual=P) \
        == cfg.n_layers * 2 * P * cfg.n_kv_heads * cfg.head_dim
    # PEFT's table: row p = [layer0 key, layer0 value, layer1 key, ...], each (n_kv_heads, head_dim)
    kv = torch.stack([ours.prefix_keys, ours.prefix_values], 1)        # (L, 2, kv, P, hd)
    table = kv.permute(3, 0, 1, 2, 4).reshape(P, -1)
    with torch.no_grad():
        pm.prompt_encoder["default"].embedding.weight.copy_(table)
        ids = torch.randint(0, 97, (3, 20))
        torch.testing.assert_close(ours(ids).logits, pm(ids).logits, atol=1e-5, rtol=0)


def test_prompt_tuning_counts_and_logits_equal_peft(pair):
    base, folder = pair
    P = 6
    ours = PromptTuning(base, n_virtual=P, init_std=0.5)
    pm = peft.get_peft_model(_hf(folder), peft.PromptTuningConfig(task_type="CAUSAL_LM",
                                                                    num_virtual_tokens=P)).eval()
    assert _peft_trainable(pm) == count_trainable(ours) == trainable_formula("prompt", base.config,
                                                                               n_virtual=P) == P * 32
    with torch.no_grad():
        pm.prompt_encoder["default"].embedding.weight.copy_(ours.prompt)
        ids = torch.randint(0, 97, (3, 20))
        theirs = pm(ids).logits
        assert theirs.shape[1] == P + 20
        torch.testing.assert_close(ours(ids).logits, theirs[:, P:], atol=1e-5, rtol=0)
