"""The Part 10 component exercise checkers accept correct answers and reject the usual mistakes."""
import torch

from lib.exercises import components as ex


def test_f1_checker():
    assert ex.check_f1_from_counts(ex.f1_from_counts_reference)

    def ok(tp, fp, fn):
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        return 2 * p * r / (p + r) if p + r else 0.0

    assert ex.check_f1_from_counts(ok)

    def arithmetic_mean(tp, fp, fn):
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        return (p + r) / 2

    assert not ex.check_f1_from_counts(arithmetic_mean)

    def no_zero_case(tp, fp, fn):
        p, r = tp / (tp + fp), tp / (tp + fn)
        return 2 * p * r / (p + r)

    report = ex.check_f1_from_counts(no_zero_case)
    assert not report and report.attempted

    def stub(tp, fp, fn):
        raise NotImplementedError

    report = ex.check_f1_from_counts(stub)
    assert not report and not report.attempted


def test_rms_norm_checker():
    assert ex.check_rms_norm(ex.rms_norm_reference)

    def ok(x, weight, eps):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight

    assert ex.check_rms_norm(ok)

    def layer_norm(x, weight, eps):
        xc = x - x.mean(-1, keepdim=True)
        return xc * torch.rsqrt(xc.pow(2).mean(-1, keepdim=True) + eps) * weight

    assert not ex.check_rms_norm(layer_norm)
