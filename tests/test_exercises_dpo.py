"""The Part 4 exercise checkers accept correct answers and reject wrong ones."""
import torch
import torch.nn.functional as F

from lib.exercises import dpo as ex


def test_dpo_loss_checker():
    assert ex.check_dpo_loss(ex.dpo_loss_reference, trials=10)

    def ok(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
        d = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
        return F.softplus(-beta * d).mean()

    assert ex.check_dpo_loss(ok)

    def summed(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
        d = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
        return F.softplus(-beta * d).sum()                               # not the mean over pairs

    assert not ex.check_dpo_loss(summed)

    def swapped(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
        d = (policy_rejected - ref_rejected) - (policy_chosen - ref_chosen)
        return F.softplus(-beta * d).mean()

    assert not ex.check_dpo_loss(swapped)

    def no_reference(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
        return F.softplus(-beta * (policy_chosen - policy_rejected)).mean()

    assert not ex.check_dpo_loss(no_reference)

    def stub(*a, **k):
        raise NotImplementedError

    rep = ex.check_dpo_loss(stub)
    assert not rep and not rep.attempted


def test_dpo_weight_checker():
    assert ex.check_dpo_weight(ex.dpo_weight_reference, trials=10)

    def ok(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
        return torch.sigmoid(-beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)))

    assert ex.check_dpo_weight(ok)

    def sign_flipped(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
        return torch.sigmoid(beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)))

    assert not ex.check_dpo_weight(sign_flipped)

    def times_beta(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
        return beta * ok(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)

    assert not ex.check_dpo_weight(times_beta)


def test_allocate_checker():
    assert ex.check_allocate(ex.allocate_reference, trials=10)

    def ok(sizes, n):
        take = [0] * len(sizes)
        for _ in range(n):                         # one at a time to the emptiest open stratum
            k = min((t, i) for i, t in enumerate(take) if t < sizes[i])[1]
            take[k] += 1
        return take

    assert ex.check_allocate(ok)

    def proportional(sizes, n):
        total = sum(sizes)
        return [round(n * s / total) for s in sizes]

    assert not ex.check_allocate(proportional)

    def uncapped(sizes, n):
        return [n // len(sizes) + (i < n % len(sizes)) for i in range(len(sizes))]

    assert not ex.check_allocate(uncapped)


def test_bradley_terry_checker():
    assert ex.check_bradley_terry(ex.bradley_terry_reference, trials=10)

    def ok(score_chosen, score_rejected):
        return F.softplus(score_rejected - score_chosen).mean()

    assert ex.check_bradley_terry(ok)

    def naive(score_chosen, score_rejected):
        return -torch.log(torch.sigmoid((score_chosen - score_rejected).float())).mean()

    assert not ex.check_bradley_terry(naive)                # float32 sigmoid underflows at scale 40

    def swapped(score_chosen, score_rejected):
        return F.softplus(score_chosen - score_rejected).mean()

    assert not ex.check_bradley_terry(swapped)


def test_token_kl_checker():
    assert ex.check_token_kl(ex.token_kl_reference, trials=10)

    def ok(logits_p, logits_q):
        p = torch.softmax(logits_p, -1)
        return (p * (torch.log_softmax(logits_p, -1) - torch.log_softmax(logits_q, -1))).sum(-1)

    assert ex.check_token_kl(ok)

    def reversed_kl(logits_p, logits_q):
        return ok(logits_q, logits_p)

    assert not ex.check_token_kl(reversed_kl)

    def raw_logits(logits_p, logits_q):                 # forgets to normalise
        return (torch.softmax(logits_p, -1) * (logits_p - logits_q)).sum(-1)

    assert not ex.check_token_kl(raw_logits)
