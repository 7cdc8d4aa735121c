"""Export :class:`~lib.llm.model.TinyLM` to Hugging Face ``transformers`` formats, and back.

* dense model -> ``LlamaForCausalLM`` (``config.json`` + ``model.safetensors``),
* MoE model   -> ``MixtralForCausalLM`` (experts fused into Mixtral's 3-D tensors).

``export_hf(model, folder)`` writes a folder that ``AutoModelForCausalLM.from_pretrained(folder)``
loads offline. ``to_hf_state_dict`` / ``hf_config_dict`` are the conversions themselves
(used by the tests to build the reference models in memory). ``transformers`` is only needed to
*load* the export, not to write it.

Book: seed-8.
"""
from __future__ import annotations

import json
import pathlib
import shutil

import torch

from .config import LMConfig
from .model import TinyLM


def hf_config_dict(cfg: LMConfig) -> dict:
    """The ``config.json`` content (Llama for dense, Mixtral for MoE) describing ``cfg``."""
    if not isinstance(cfg, LMConfig):
        raise TypeError(f"expected an LMConfig, got {type(cfg).__name__}")
    d = {
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.d_ff,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads,
        "head_dim": cfg.head_dim,
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,
        "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},
        "tie_word_embeddings": cfg.tie_embeddings,
        "hidden_act": "silu",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "initializer_range": cfg.init_std,
        "torch_dtype": "float32",
        "use_cache": True,
    }
    if cfg.is_moe:
        d.update({"architectures": ["MixtralForCausalLM"], "model_type": "mixtral",
                  "num_local_experts": cfg.n_experts, "num_experts_per_tok": cfg.top_k,
                  "router_aux_loss_coef": cfg.moe_aux_weight, "router_jitter_noise": 0.0,
                  "output_router_logits": False, "sliding_window": None})
    else:
        d.update({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "mlp_bias": False,
                  "pretraining_tp": 1})
    return d


def to_hf_state_dict(model: TinyLM) -> dict[str, torch.Tensor]:
    """lib parameter names -> Hugging Face names (``model.`` prefix; MoE experts fused Mixtral-style)."""
    if not isinstance(model, TinyLM):
        raise TypeError(f"expected a TinyLM, got {type(model).__name__}")
    cfg = model.config
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    out = {}
    for k, v in sd.items():
        if k == "lm_head.weight":
            if not cfg.tie_embeddings:
                out[k] = v
            continue
        if ".mlp.experts." in k:
            continue  # fused below
        out["model." + k] = v
    if cfg.is_moe:
        for i in range(cfg.n_layers):
            p = f"layers.{i}.mlp.experts."
            gate_up = torch.stack([torch.cat([sd[f"{p}{e}.gate_proj.weight"], sd[f"{p}{e}.up_proj.weight"]], 0)
                                   for e in range(cfg.n_experts)])
            down = torch.stack([sd[f"{p}{e}.down_proj.weight"] for e in range(cfg.n_experts)])
            out[f"model.{p}gate_up_proj"] = gate_up
            out[f"model.{p}down_proj"] = down
    return {k: v.contiguous() for k, v in out.items()}


def from_hf_state_dict(sd: dict[str, torch.Tensor], cfg: LMConfig) -> TinyLM:
    """Inverse of :func:`to_hf_state_dict`: a :class:`TinyLM` holding Hugging Face weights."""
    model = TinyLM(cfg)
    mine = {}
    for k, v in sd.items():
        if k.endswith("rotary_emb.inv_freq"):
            continue
        name = k[len("model."):] if k.startswith("model.") else k
        if ".mlp.experts.gate_up_proj" in name:
            p = name[: -len("gate_up_proj")]
            for e in range(cfg.n_experts):
                g, u = v[e].chunk(2, dim=0)
                mine[f"{p}{e}.gate_proj.weight"], mine[f"{p}{e}.up_proj.weight"] = g, u
        elif ".mlp.experts.down_proj" in name:
            p = name[: -len("down_proj")]
            for e in range(cfg.n_experts):
                mine[f"{p}{e}.down_proj.weight"] = v[e]
        else:
            mine[name] = v
    if cfg.tie_embeddings:
        mine["lm_head.weight"] = mine["embed_tokens.weight"]
    model.load_state_dict(mine, strict=True)
    if cfg.tie_embeddings:
        model.lm_head.weight = model.embed_tokens.weight
    return model.eval()


def export_hf(model: TinyLM, folder, tokenizer_dir=None, chat_template: str | None = None) -> pathlib.Path:
    """Write ``config.json``, ``generation_config.json`` and ``model.safetensors`` into ``folder``.

    ``tokenizer_dir``: a folder holding a Hugging Face ``tokenizer.json`` (and optionally
    ``tokenizer_config.json`` / ``special_tokens_map.json``) to copy alongside.
    ``chat_template``: a Jinja template written into the copied ``tokenizer_config.json``
    (e.g. :data:`lib.sft.chat.CHAT_TEMPLATE_JINJA`, whose ``{% generation %}`` tags give
    ``apply_chat_template(..., return_assistant_tokens_mask=True)``); needs ``tokenizer_dir``.
    """
    from safetensors.torch import save_file

    if not isinstance(model, TinyLM):
        raise TypeError(f"export_hf expects a TinyLM, got {type(model).__name__}")
    if tokenizer_dir is not None and not (pathlib.Path(tokenizer_dir) / "tokenizer.json").is_file():
        raise FileNotFoundError(f"no tokenizer.json in {tokenizer_dir}")
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    (folder / "config.json").write_text(json.dumps(hf_config_dict(cfg), indent=2) + "\n", encoding="utf-8")
    (folder / "generation_config.json").write_text(json.dumps({"do_sample": False}, indent=2) + "\n",
                                                   encoding="utf-8")
    save_file(to_hf_state_dict(model), str(folder / "model.safetensors"), metadata={"format": "pt"})
    if tokenizer_dir is not None:
        tdir = pathlib.Path(tokenizer_dir)
        if not (tdir / "tokenizer.json").is_file():
            raise FileNotFoundError(f"no tokenizer.json in {tdir}")
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            if (tdir / name).is_file():
                shutil.copy(tdir / name, folder / name)
    if chat_template is not None:
        if tokenizer_dir is None or not isinstance(chat_template, str) or not chat_template:
            raise ValueError("chat_template must be a non-empty str and needs tokenizer_dir")
        tc = folder / "tokenizer_config.json"
        conf = json.loads(tc.read_text(encoding="utf-8")) if tc.is_file() else {}
        conf["chat_template"] = chat_template
        tc.write_text(json.dumps(conf, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return folder


__all__ = ["hf_config_dict", "to_hf_state_dict", "from_hf_state_dict", "export_hf"]
