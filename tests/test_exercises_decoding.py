"""The Part 5 decoding exercise checkers accept correct answers and reject wrong ones."""
import torch

from lib.exercises import decoding as ex


def test_beam_step_checker():
    assert ex.check_beam_step(ex.beam_step_reference)

    def ok(beam_scores, logprobs, n):
        V = logprobs.shape[1]
        s, i = (beam_scores[:, None] + logprobs).flatten().sort(descending=True)
        return s[:n], i[:n] // V, i[:n] % V

    assert ex.check_beam_step(ok)

    def per_beam(beam_scores, logprobs, n):  # wrong: ignores the running scores
        V = logprobs.shape[1]
        s, i = logprobs.flatten().topk(n)
        return s, i // V, i % V

    assert not ex.check_beam_step(per_beam)

    def no_stub(beam_scores, logprobs, n):
        raise NotImplementedError

    assert not ex.check_beam_step(no_stub).attempted


def test_top_p_mask_checker():
    assert ex.check_top_p_mask(ex.top_p_mask_reference)

    def ok(logits, p):
        probs, order = logits.softmax(-1).sort(-1, descending=True)
        before = probs.cumsum(-1) - probs                     # mass of the tokens ranked above
        keep_sorted = before < p
        return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)

    assert ex.check_top_p_mask(ok)

    def strict(logits, p):  # wrong: stops before reaching p
        probs, order = logits.softmax(-1).sort(-1, descending=True)
        keep_sorted = probs.cumsum(-1) <= p
        keep_sorted[:, 0] = True
        return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)

    assert not ex.check_top_p_mask(strict)


def test_majority_vote_checker():
    assert ex.check_majority_vote(ex.majority_vote_reference)

    def most_common(answers):  # wrong: counts None as an answer
        return max(answers, key=answers.count) if answers else None

    assert not ex.check_majority_vote(most_common)
