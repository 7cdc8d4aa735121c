"""lib.align.sft: completion-only SFT (batching, masking, loss against a hand-rolled cross-entropy,
training) and its shipped cold-start checkpoint."""
import pytest
import torch
import torch.nn.functional as F

from lib.align.sft import COLD_START, SFTConfig, sft_batch, sft_loss, sft_train
from lib.llm.model import IGNORE_INDEX


def _tiny_lm(seed=0):
    from lib.llm.config import LMConfig
    from lib.llm.model import TinyLM

    torch.manual_seed(seed)
    return TinyLM(LMConfig(vocab_size=12, d_model=32, n_layers=1, n_heads=2, n_kv_heads=2, d_ff=64, max_seq_len=32))


def test_sft_batch_masks_prompt_and_padding():
    ids, tg, m = sft_batch([([1, 2, 3], [4, 5]), ([6], [7, 8, 9])], pad_id=0)
    assert ids.tolist() == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 0]]
    assert m.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    I = IGNORE_INDEX
    assert tg.tolist() == [[I, I, 4, 5, I], [7, 8, 9, I, I]]       # position t is trained to predict token t + 1
    with pytest.raises(ValueError, match="non-empty"):
        sft_batch([], 0)
    with pytest.raises(ValueError, match="pair"):
        sft_batch([[1, 2, 3]], 0)
    with pytest.raises(ValueError, match="non-empty token lists"):
        sft_batch([([1], [])], 0)


def test_sft_loss_is_completion_only_cross_entropy():
    model = _tiny_lm()
    ex = [([1, 2, 3], [4, 5]), ([6], [7, 8, 9])]
    ids, tg, _ = sft_batch(ex, pad_id=0)
    loss = sft_loss(model, ids, tg)
    # by hand: each example alone, no padding, sum of -log p(completion token) over all completion tokens
    nll, n = 0.0, 0
    for p, c in ex:
        seq = torch.tensor([p + c])
        with torch.no_grad():
            logp = torch.log_softmax(model(seq).logits[0], -1)
        for j, t in enumerate(c):
            nll -= float(logp[len(p) - 1 + j, t])
            n += 1
    assert abs(float(loss.detach()) - nll / n) < 1e-5
    # positions that predict a prompt token or padding get exactly zero gradient
    logits = model(ids).logits.detach().requires_grad_(True)
    F.cross_entropy(logits.reshape(-1, 12), tg.reshape(-1), ignore_index=IGNORE_INDEX).backward()
    masked = tg == IGNORE_INDEX
    assert torch.all(logits.grad[masked] == 0) and torch.all(logits.grad[~masked].abs().sum(-1) > 0)
    with pytest.raises(ValueError, match="IGNORE_INDEX"):
        sft_loss(model, ids, torch.full_like(tg, IGNORE_INDEX))
    with pytest.raises(ValueError, match="shape"):
        sft_loss(model, ids, tg[:, :-1])


def test_sft_train_learns_a_mapping_and_validates():
    torch.set_num_threads(1)
    model = _tiny_lm(1)
    ex = [([a, 10], [(a + 1) % 10, 11]) for a in range(10)]          # "a ?" -> "a+1 <eos>"
    hist = sft_train(model, ex, pad_id=11, cfg=SFTConfig(steps=150, batch_size=16, lr=1e-2, warmup_steps=10))
    assert len(hist["loss"]) == 150 and hist["loss"][-1] < 0.1 < hist["loss"][0]
    assert max(hist["lr"]) == pytest.approx(1e-2) and hist["lr"][-1] < 2e-3   # warmup, then cosine decay
    with torch.no_grad():
        pred = model(torch.tensor([[a, 10] for a in range(10)])).logits[:, -1].argmax(-1)
    assert pred.tolist() == [(a + 1) % 10 for a in range(10)]
    with pytest.raises(ValueError, match="steps"):
        SFTConfig(steps=0)
    with pytest.raises(ValueError, match="warmup"):
        SFTConfig(steps=5, warmup_steps=6)


def test_cold_start_checkpoint_reproduces_its_recorded_accuracy():
    """The shipped tiny-lm-arith-sft: hash, recipe, and its greedy held-out accuracy as recorded at training time."""
    from lib.llm.generate import greedy_accuracy
    from lib.align.tasks import chain_arithmetic_task, encode_prompts
    from lib.data import verify_answer
    from lib.llm.checkpoint import CHECKPOINT_DIR, file_sha256, load_model
    from lib.llm.pretrain import tokenizer_sha256
    from lib.llm.tokenizer import load_tokenizer

    torch.set_num_threads(1)
    model, meta = load_model(COLD_START, with_meta=True)
    assert meta["weights_sha256"] == file_sha256(CHECKPOINT_DIR / COLD_START / "model.safetensors")
    assert meta["tokenizer_sha256"] == tokenizer_sha256()
    task = chain_arithmetic_task()
    assert meta["task"] == task.describe(), "the task's splits changed since the checkpoint was trained"
    tok = load_tokenizer()
    held = task.held_out
    g = greedy_accuracy(model, encode_prompts(tok, held), lambda i, c: verify_answer(held[i], tok.decode(c, skip_special_tokens=True)),
                        tok.eos_id, 32)
    assert g == pytest.approx(meta["metrics"]["after"]["held_out"]["greedy"], abs=0.011)  # 2 of 200: argmax ties across CPUs
    m = meta["metrics"]
    assert m["after"]["facts"]["greedy"] > 0.9 > m["before"]["facts"]["greedy"]       # SFT taught the facts
    assert m["after"]["held_out"]["greedy"] > m["before"]["held_out"]["greedy"]
