"""The Part 8 exercise checkers accept correct answers and reject wrong ones."""
import torch

from lib.exercises import rlhf as ex


def test_last_token_checker():
    assert ex.check_last_token(ex.last_token_reference, trials=10)

    def ok(attention_mask):
        pos = torch.arange(attention_mask.shape[1])
        return (pos * attention_mask).argmax(1)

    assert ex.check_last_token(ok)

    def by_length(attention_mask):                      # right padding only: wrong under left padding
        return attention_mask.sum(1) - 1

    assert not ex.check_last_token(by_length)

    def last_position(attention_mask):                  # left padding only
        return torch.full((attention_mask.shape[0],), attention_mask.shape[1] - 1)

    assert not ex.check_last_token(last_position)

    def stub(attention_mask):
        raise NotImplementedError

    assert "not attempted" in str(ex.check_last_token(stub))


def test_pairwise_accuracy_checker():
    assert ex.check_pairwise_accuracy(ex.pairwise_accuracy_reference, trials=10)

    def ok(score_chosen, score_rejected):
        return float(((torch.sign(score_chosen - score_rejected) + 1) / 2).mean())

    assert ex.check_pairwise_accuracy(ok)

    def ties_lost(score_chosen, score_rejected):
        return float((score_chosen > score_rejected).double().mean())

    assert not ex.check_pairwise_accuracy(ties_lost)


def test_k3_checker_accepts_exact_and_rejects_wrong():
    assert ex.check_k3(ex.k3_reference, trials=10)

    def ok(logp, logp_ref):
        log_r = logp_ref - logp
        return torch.expm1(log_r) - log_r

    assert ex.check_k3(ok)

    def k1(logp, logp_ref):
        return logp - logp_ref

    assert not ex.check_k3(k1)

    def flipped(logp, logp_ref):
        log_r = logp - logp_ref
        return torch.expm1(log_r) - log_r

    assert not ex.check_k3(flipped)

    def stub(logp, logp_ref):
        raise NotImplementedError

    rep = ex.check_k3(stub)
    assert not rep and not rep.attempted


def test_penalised_rewards_checker():
    assert ex.check_penalised_rewards(ex.penalised_rewards_reference, trials=10)

    def ok(score, logp, logp_ref, mask, kl_coef):
        m = mask.to(logp.dtype)
        r = -kl_coef * (logp - logp_ref) * m
        last = (m * torch.arange(1, m.shape[1] + 1)).argmax(1)
        r[torch.arange(len(r)), last] += score
        return r

    assert ex.check_penalised_rewards(ok)

    def score_at_end_of_row(score, logp, logp_ref, mask, kl_coef):
        r = -kl_coef * (logp - logp_ref) * mask
        r[:, -1] += score                                   # ignores where the answer ends
        return r

    assert not ex.check_penalised_rewards(score_at_end_of_row)

    def unmasked(score, logp, logp_ref, mask, kl_coef):
        r = ok(score, logp, logp_ref, mask, kl_coef)
        return r - kl_coef * (logp - logp_ref) * (1 - mask)  # penalises the padding too

    assert not ex.check_penalised_rewards(unmasked)


def test_sequence_logprob_checker():
    assert ex.check_sequence_logprob(ex.sequence_logprob_reference, trials=10)

    def ok(logits, tokens, mask):
        lp = torch.log_softmax(logits, -1).gather(-1, tokens[..., None])[..., 0]
        return (lp * mask).sum(1)

    assert ex.check_sequence_logprob(ok)

    def unmasked(logits, tokens, mask):
        return torch.log_softmax(logits, -1).gather(-1, tokens[..., None])[..., 0].sum(1)

    assert not ex.check_sequence_logprob(unmasked)

    def naive(logits, tokens, mask):                       # log of softmax overflows at scale 30
        p = torch.softmax(logits.float(), -1).gather(-1, tokens[..., None])[..., 0]
        return (torch.log(p) * mask).sum(1)

    assert not ex.check_sequence_logprob(naive)
