"""The Part 10 attention exercise checkers accept correct answers and reject wrong ones."""
import numpy as np

from lib.exercises import attention as ex


def test_alibi_bias_checker():
    assert ex.check_alibi_bias(ex.alibi_bias_reference)

    def ok(n_heads, seq_len):
        c = 2 ** int(np.floor(np.log2(n_heads)))
        m = [2 ** (-8 * h / c) for h in range(1, c + 1)]
        m += [2 ** (-8 * h / (2 * c)) for h in range(1, 2 * c + 1, 2)][: n_heads - c]
        i = np.arange(seq_len)
        return -np.array(m)[:, None, None] * (i[:, None] - i[None, :])[None]

    assert ex.check_alibi_bias(ok)

    def power_of_two_only(n_heads, seq_len):  # wrong for 3, 6, 12 heads
        m = [2 ** (-8 * h / n_heads) for h in range(1, n_heads + 1)]
        i = np.arange(seq_len)
        return -np.array(m)[:, None, None] * (i[:, None] - i[None, :])[None]

    assert not ex.check_alibi_bias(power_of_two_only)

    def wrong_sign(n_heads, seq_len):
        return -ok(n_heads, seq_len)

    assert not ex.check_alibi_bias(wrong_sign)

    def stub(n_heads, seq_len):
        raise NotImplementedError

    rep = ex.check_alibi_bias(stub)
    assert not rep and not rep.attempted


def test_gqa_kv_head_checker():
    assert ex.check_gqa_kv_head(ex.gqa_kv_head_reference)
    assert ex.check_gqa_kv_head(lambda query_head, n_heads, n_kv_heads:
                                query_head // (n_heads // n_kv_heads))
    # interleaved instead of consecutive groups
    assert not ex.check_gqa_kv_head(lambda query_head, n_heads, n_kv_heads: query_head % n_kv_heads)
    assert not ex.check_gqa_kv_head(lambda query_head, n_heads, n_kv_heads: query_head // n_kv_heads)
