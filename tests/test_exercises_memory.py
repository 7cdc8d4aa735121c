"""The Part 10 memory exercise checker accepts a correct loss and rejects the usual mistakes."""
import torch.nn.functional as F

from lib.exercises import memory as ex


def test_checker_accepts_reference_and_a_correct_answer():
    assert ex.check_accumulation_loss(ex.accumulation_loss_reference, trials=10)

    def ok(logits, targets, total_tokens, n_micro):
        s = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                            reduction="sum")
        return s / total_tokens

    assert ex.check_accumulation_loss(ok)


def test_checker_rejects_per_micro_batch_mean():
    def per_micro_mean(logits, targets, total_tokens, n_micro):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                               targets.reshape(-1)) / n_micro

    report = ex.check_accumulation_loss(per_micro_mean)
    assert not report and report.attempted


def test_checker_rejects_counting_padding_and_reports_stub():
    def counts_padding(logits, targets, total_tokens, n_micro):
        nll = -logits.log_softmax(-1).gather(-1, targets.clamp_min(0)[..., None])[..., 0]
        return (nll * (targets != -100)).sum() / (total_tokens + (targets == -100).sum())

    assert not ex.check_accumulation_loss(counts_padding)

    def stub(logits, targets, total_tokens, n_micro):
        raise NotImplementedError

    report = ex.check_accumulation_loss(stub)
    assert not report and not report.attempted
