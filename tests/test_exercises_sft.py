"""The Part 3 exercise checkers accept the lib implementation and reject wrong ones."""
import torch
import torch.nn.functional as F

from lib.exercises import sft as ex


# ----------------------------------------------------------------------------- helper C: loss, packing
def test_masked_loss_checker():
    assert ex.check_masked_loss(ex.masked_loss_reference, trials=10)

    def ok(logits, labels):
        return F.cross_entropy(logits[:-1], labels[1:], ignore_index=-100)

    assert ex.check_masked_loss(ok)

    def unshifted(logits, labels):
        return F.cross_entropy(logits, labels, ignore_index=-100)

    assert not ex.check_masked_loss(unshifted)

    def mean_over_all(logits, labels):
        nll = -torch.log_softmax(logits[:-1], -1).gather(-1, labels[1:].clamp_min(0)[:, None])
        return (nll[:, 0] * (labels[1:] != -100)).mean()

    assert not ex.check_masked_loss(mean_over_all)


def test_packing_mask_checker():
    assert ex.check_packing_mask(ex.packing_mask_reference, trials=10)

    def ok(segment_ids):
        L = len(segment_ids)
        same = segment_ids[:, None] == segment_ids[None, :]
        m = same & torch.ones(L, L, dtype=torch.bool).tril() & (segment_ids[:, None] > 0)
        return m | torch.eye(L, dtype=torch.bool)

    assert ex.check_packing_mask(ok)

    def plain_causal(segment_ids):
        L = len(segment_ids)
        return torch.ones(L, L, dtype=torch.bool).tril()

    assert not ex.check_packing_mask(plain_causal)

    def no_causal(segment_ids):
        return (segment_ids[:, None] == segment_ids[None, :]) | torch.eye(len(segment_ids),
                                                                         dtype=torch.bool)

    assert not ex.check_packing_mask(no_causal)


def test_bigram_jaccard_checker():
    assert ex.check_bigram_jaccard(ex.bigram_jaccard_reference, trials=10)

    def ok(a, b):
        def grams(t):
            w = t.lower().split()
            return {tuple(w[i:i + 2]) for i in range(len(w) - 1)} if len(w) > 1 else {tuple(w)}
        A, B = grams(a), grams(b)
        return len(A & B) / len(A | B)

    assert ex.check_bigram_jaccard(ok)

    def case_sensitive(a, b):
        def grams(t):
            w = t.split()
            return {tuple(w[i:i + 2]) for i in range(len(w) - 1)} if len(w) > 1 else {tuple(w)}
        A, B = grams(a), grams(b)
        return len(A & B) / len(A | B)

    assert not ex.check_bigram_jaccard(case_sensitive)

    def words_not_bigrams(a, b):
        A, B = set(a.lower().split()), set(b.lower().split())
        return len(A & B) / len(A | B)

    assert not ex.check_bigram_jaccard(words_not_bigrams)


# ----------------------------------------------------------------------------- helper B: LoRA
def test_lora_forward_checker():
    assert ex.check_lora_forward(ex.lora_forward_reference, trials=10)

    def ok(x, weight, lora_A, lora_B, alpha):
        return x @ weight.T + alpha / lora_A.shape[0] * (x @ lora_A.T @ lora_B.T)

    assert ex.check_lora_forward(ok)

    def no_scaling(x, weight, lora_A, lora_B, alpha):
        return x @ weight.T + x @ lora_A.T @ lora_B.T

    assert not ex.check_lora_forward(no_scaling)

    def alpha_only(x, weight, lora_A, lora_B, alpha):
        return x @ weight.T + alpha * (x @ lora_A.T @ lora_B.T)

    assert not ex.check_lora_forward(alpha_only)


def test_lora_count_checker():
    assert ex.check_lora_count(ex.lora_count_reference, trials=10)

    def ok(n_layers, d_model, n_heads, n_kv_heads, d_ff, r, targets):
        hd = d_model // n_heads
        dims = {"q_proj": (d_model, n_heads * hd), "k_proj": (d_model, n_kv_heads * hd),
                "v_proj": (d_model, n_kv_heads * hd), "o_proj": (n_heads * hd, d_model),
                "gate_proj": (d_model, d_ff), "up_proj": (d_model, d_ff), "down_proj": (d_ff, d_model)}
        return n_layers * sum(r * sum(dims[t]) for t in targets)

    assert ex.check_lora_count(ok)

    def ignores_gqa(n_layers, d_model, n_heads, n_kv_heads, d_ff, r, targets):
        return ok(n_layers, d_model, n_heads, n_heads, d_ff, r, targets)

    assert not ex.check_lora_count(ignores_gqa)


def test_prefix_count_checker():
    assert ex.check_prefix_count(ex.prefix_count_reference, trials=10)

    def ok(n_layers, d_model, n_heads, n_kv_heads, n_virtual):
        return n_layers * 2 * n_virtual * n_kv_heads * (d_model // n_heads)

    assert ex.check_prefix_count(ok)

    def d_model_wide(n_layers, d_model, n_heads, n_kv_heads, n_virtual):
        return n_layers * 2 * n_virtual * d_model

    assert not ex.check_prefix_count(d_model_wide)
