"""Cross-check of lib.align.dpo against TRL's DPOTrainer (trl==1.16.0, a test dependency).

TRL 1.x has no standalone DPO loss function, so the check builds a ``DPOTrainer`` on the Hugging Face
export of the book's models (policy: the cold start with its weights nudged, reference: the cold start)
with ``bf16=False`` (TRL's configs default to bf16 even on CPU, which moves the logits), lets TRL
tokenize a few real preference pairs, and compares ``DPOTrainer.compute_loss`` on one collated batch
with lib's loss on the same token ids: sigmoid DPO, IPO (TRL's per-token normalisation) and
DPO + SFT (TRL's ``["sigmoid", "sft"]``), within 1e-6. The import of TRL is slow (~6 s): it lives here,
not in a notebook.
"""
import math
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")
transformers = pytest.importorskip("transformers")

from lib.align import dpo as D  # noqa: E402
from lib.align.sft import COLD_START  # noqa: E402
from lib.align.tasks import chain_arithmetic_task, prompt_text  # noqa: E402
from lib.llm.checkpoint import load_model  # noqa: E402
from lib.llm.export import export_hf  # noqa: E402
from lib.llm.tokenizer import TOKENIZER_DIR, load_tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dpo_trl")
    tok = load_tokenizer()
    ref = load_model(COLD_START)
    policy = load_model(COLD_START)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():                                   # a policy that differs from its reference
        for p in policy.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g))
    export_hf(policy, tmp / "policy", tokenizer_dir=TOKENIZER_DIR)
    export_hf(ref, tmp / "ref", tokenizer_dir=TOKENIZER_DIR)
    task = chain_arithmetic_task()
    rows = []
    for i, p in enumerate(task.held_out[:6]):
        right = " " + p.cot_answer
        wrong = " " + p.cot_answer.replace(f"is {p.answer}.", f"is {p.answer + 1 + i}.")
        rows.append({"prompt": prompt_text(p), "chosen": right, "rejected": wrong})
    return tmp, tok, policy, ref, rows


def _trl_and_lib(setup, beta, loss_type, loss_weights=None, sft_weight=0.0):
    tmp, tok, policy, ref, rows = setup
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(tmp / "policy"))
    hf_pol = transformers.AutoModelForCausalLM.from_pretrained(str(tmp / "policy"), dtype=torch.float32)
    hf_ref = transformers.AutoModelForCausalLM.from_pretrained(str(tmp / "ref"), dtype=torch.float32)
    args = trl.DPOConfig(output_dir=str(tmp / "out"), bf16=False, fp16=False, beta=beta, loss_type=loss_type,
                         loss_weights=loss_weights, report_to=[], per_device_train_batch_size=len(rows),
                         use_cpu=True, dataset_num_proc=None, max_length=None)
    trainer = trl.DPOTrainer(model=hf_pol, ref_model=hf_ref, args=args,
                             train_dataset=datasets.Dataset.from_list(rows), processing_class=hf_tok)
    examples = [trainer.train_dataset[i] for i in range(len(rows))]
    batch = trainer.data_collator(examples)
    trainer.model.eval()
    with torch.no_grad():
        trl_loss = float(trainer.compute_loss(trainer.model, batch))
    triples = [(e["prompt_ids"], e["chosen_ids"], e["rejected_ids"]) for e in examples]
    cfg = D.DPOConfig(beta=beta, loss_type=loss_type[0], sft_weight=sft_weight)
    with torch.no_grad():
        lib_loss, _ = D.batch_loss(policy, triples, tok.pad_id, cfg, reference=ref)
    return trl_loss, float(lib_loss)


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_sigmoid_dpo_equals_trl(setup, beta):
    trl_loss, lib_loss = _trl_and_lib(setup, beta, ["sigmoid"])
    assert abs(trl_loss - lib_loss) <= 1e-6, (trl_loss, lib_loss)
    assert abs(lib_loss - math.log(2)) > 1e-3            # the policy is not its reference: a real test


def test_ipo_equals_trl(setup):
    trl_loss, lib_loss = _trl_and_lib(setup, 0.1, ["ipo"])
    assert abs(trl_loss - lib_loss) <= 1e-6 * max(1.0, abs(trl_loss)), (trl_loss, lib_loss)


def test_dpo_plus_sft_equals_trl(setup):
    trl_loss, lib_loss = _trl_and_lib(setup, 0.1, ["sigmoid", "sft"], loss_weights=[1.0, 0.5], sft_weight=0.5)
    assert abs(trl_loss - lib_loss) <= 1e-6, (trl_loss, lib_loss)
