"""Small builders shared by several test files (imported as ``from helpers import ...``; pytest puts
``tests/`` on the path)."""
import torch

from lib.llm.config import LMConfig
from lib.llm.model import TinyLM


def small_lm(**overrides) -> TinyLM:
    """A seeded 2-layer TinyLM (vocabulary 97, d = 32, GQA 4/2 heads) in eval mode; any LMConfig
    field can be overridden."""
    torch.manual_seed(0)
    cfg = dict(vocab_size=97, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=64,
               max_seq_len=64)
    cfg.update(overrides)
    return TinyLM(LMConfig(**cfg)).eval()


def hf_twin(model: TinyLM):
    """The Hugging Face ``LlamaForCausalLM`` with ``model``'s config and weights (in memory, eval
    mode): the peer every cross-check compares against."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from lib.llm.export import hf_config_dict, to_hf_state_dict

    d = hf_config_dict(model.config)
    hf = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in d.items()
                                         if k not in ("architectures", "model_type")}))
    tied = model.config.tie_embeddings
    hf.load_state_dict(to_hf_state_dict(model), strict=not tied)
    if tied:
        hf.tie_weights()
    return hf.eval()
