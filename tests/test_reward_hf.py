"""Cross-checks of lib.align.reward against Hugging Face (test dependencies only).

* the reward model's scores equal ``transformers``' ``LlamaForSequenceClassification`` holding the
  same weights (backbone from the export, ``score`` = the reward head), on right- and left-padded
  batches, within 1e-6. Two details of the peer matter: it finds the last token by looking for
  ``config.pad_token_id`` in ``input_ids`` (so the pad id must never occur inside a sequence: the
  book's pad token is its own id, distinct from EOS), and it numbers positions 0, 1, ... whatever
  the mask says, so under left padding the positions of the real tokens are passed explicitly
  (lib counts real tokens only, as generation does);
* per-token log-probs of a generated completion (:func:`lib.llm.generate.token_logprobs`) equal
  ``model.compute_transition_scores`` of ``generate`` on the twin within 5e-5 (float32 round-off of
  two implementations; seed-76);
* the Bradley–Terry loss of :func:`lib.align.reward.batch_loss` equals TRL's
  ``RewardTrainer.compute_loss`` on one collated batch of real pairs (trl==1.16, ``bf16=False``).
"""
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
transformers = pytest.importorskip("transformers")

from lib.align import reward as R  # noqa: E402
from lib.align.sft import COLD_START  # noqa: E402
from lib.align.tasks import chain_arithmetic_task, encode_prompts  # noqa: E402
from lib.llm.checkpoint import load_model  # noqa: E402
from lib.llm.export import hf_config_dict, to_hf_state_dict  # noqa: E402
from lib.llm.tokenizer import load_tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    tok = load_tokenizer()
    cold = load_model(COLD_START)
    rm = R.RewardModel.from_lm(cold, seed=0, head_std=0.3).eval()     # a head large enough to matter
    from lib.align.preference import load_pairs

    _, ev, _ = load_pairs()
    return tok, cold, rm, ev[:6]


def seq_cls_twin(rm, pad_id):
    """``LlamaForSequenceClassification`` (one label) with ``rm``'s backbone and head."""
    d = hf_config_dict(rm.config)
    cfg = transformers.LlamaConfig(**{k: v for k, v in d.items() if k not in ("architectures", "model_type")},
                                   num_labels=1, pad_token_id=pad_id)
    hf = transformers.LlamaForSequenceClassification(cfg)
    sd = {k: v for k, v in to_hf_state_dict(rm.lm).items() if k != "lm_head.weight"}
    sd["score.weight"] = rm.head.weight.detach().clone()
    missing, unexpected = hf.load_state_dict(sd, strict=False)
    assert not unexpected and all("rotary" in k for k in missing), (missing, unexpected)
    return hf.eval()


@pytest.mark.parametrize("padding", R.PADDINGS)
def test_scores_equal_llama_for_sequence_classification(setup, padding):
    tok, _, rm, pairs = setup
    hf = seq_cls_twin(rm, tok.pad_id)
    ids, attn = R.pair_sequences(pairs, tok.pad_id, padding)
    assert (attn.sum(1) < ids.shape[1]).any()                      # the batch really is padded
    assert not (ids[attn.bool()] == tok.pad_id).any()              # no pad id inside a sequence
    kw = {}
    if padding == "left":
        kw["position_ids"] = (attn.cumsum(1) - 1).clamp_min(0)
    with torch.no_grad():
        ours = rm(ids, attn)
        theirs = hf(input_ids=ids, attention_mask=attn, **kw).logits[:, 0]
    assert float(ours.abs().max()) > 0.05
    assert float((ours - theirs).abs().max()) <= 1e-6, (ours, theirs)


def test_token_logprobs_equal_compute_transition_scores(setup):
    from helpers import hf_twin

    from lib.llm.generate import token_logprobs

    tok, cold, _, _ = setup
    hf = hf_twin(cold)
    task = chain_arithmetic_task()
    for prompt in encode_prompts(tok, task.held_out[:3]):
        ids = torch.tensor([prompt])
        out = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=20, do_sample=False, use_cache=False,
                          eos_token_id=tok.eos_id, pad_token_id=tok.pad_id, output_scores=True,
                          return_dict_in_generate=True)
        hf_lp = hf.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)[0]
        seq = out.sequences
        with torch.no_grad():
            ours = token_logprobs(cold, seq, torch.ones_like(seq), len(prompt))[0]
        assert ours.shape == hf_lp.shape and len(ours) >= 5
        # float32 round-off of two implementations of the same network: logits of size ~20 agree
        # to a few 1e-6 relative, so log-probs to a few 1e-5 absolute
        assert float((ours - hf_lp).abs().max()) <= 5e-5, (ours, hf_lp)
        assert float(ours.sum() - hf_lp.sum()) ** 2 <= 1e-8             # the sequence log-prob


def test_bradley_terry_equals_trl_reward_trainer(setup, tmp_path):
    trl = pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    from lib.llm.export import export_hf
    from lib.llm.tokenizer import TOKENIZER_DIR

    tok, _, rm, pairs = setup
    export_hf(rm.lm, tmp_path / "lm", tokenizer_dir=TOKENIZER_DIR)
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "lm"))
    assert hf_tok.pad_token_id == tok.pad_id
    hf = seq_cls_twin(rm, tok.pad_id)
    rows = [{"chosen_ids": list(p.prompt_ids + p.chosen_ids), "rejected_ids": list(p.prompt_ids + p.rejected_ids)}
            for p in pairs]
    args = trl.RewardConfig(output_dir=str(tmp_path / "out"), bf16=False, fp16=False, report_to=[],
                            per_device_train_batch_size=len(rows), use_cpu=True, dataset_num_proc=None,
                            max_length=None, center_rewards_coefficient=None)
    trainer = trl.RewardTrainer(model=hf, args=args, train_dataset=datasets.Dataset.from_list(rows),
                                processing_class=hf_tok)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
    trainer.model.eval()
    with torch.no_grad():
        trl_loss = float(trainer.compute_loss(trainer.model, batch))
        ours, _ = R.batch_loss(rm, pairs, tok.pad_id)
    assert abs(trl_loss - float(ours)) <= 1e-6, (trl_loss, float(ours))
    assert abs(float(ours) - 0.6931) > 1e-3                        # the head is not zero: a real test
