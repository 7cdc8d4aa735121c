"""The Part 10 quantisation exercise checker accepts a correct pair and rejects usual mistakes."""
import torch

from lib.exercises import compression as ex


def _quantize(x, bits):
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (hi - lo) / (2 ** bits - 1)
    zp = int(round(-lo / scale))
    return torch.clamp(torch.round(x / scale) + zp, 0, 2 ** bits - 1).long(), scale, zp


def _dequantize(codes, scale, zero_point):
    return (codes - zero_point) * scale


def test_accepts_reference_and_a_correct_pair():
    assert ex.check_quantize_pair(ex.quantize_reference, ex.dequantize_reference, trials=10)
    assert ex.check_quantize_pair(_quantize, _dequantize)


def test_rejects_symmetric_range_missing_zero_point_and_stub():
    def no_zero_in_range(x, bits):  # min/max of x only: 0 not representable for one-sided x
        lo, hi = float(x.min()), float(x.max())
        scale = (hi - lo) / (2 ** bits - 1)
        zp = int(round(-lo / scale))
        return torch.clamp(torch.round(x / scale) + zp, 0, 2 ** bits - 1).long(), scale, zp

    assert not ex.check_quantize_pair(no_zero_in_range, _dequantize)

    def forgets_zero_point(codes, scale, zero_point):
        return codes * scale

    report = ex.check_quantize_pair(_quantize, forgets_zero_point)
    assert not report and report.attempted and "dequantize" in report.name

    def truncates(x, bits):
        codes, scale, zp = _quantize(x, bits)
        return torch.clamp(torch.floor(x / scale) + zp, 0, 2 ** bits - 1).long(), scale, zp

    assert not ex.check_quantize_pair(truncates, _dequantize)

    def stub(*args, **kwargs):
        raise NotImplementedError

    report = ex.check_quantize_pair(stub, stub)
    assert not report and not report.attempted
    assert not ex.check_quantize_pair(_quantize, 3)


def test_magnitude_mask_checker():
    assert ex.check_magnitude_mask(ex.magnitude_mask_reference, trials=10)

    def ok(w, amount):
        k = round(amount * w.numel())
        keep = torch.ones(w.numel(), dtype=torch.bool)
        keep[w.abs().reshape(-1).argsort()[:k]] = False
        return keep.view(w.shape)

    assert ex.check_magnitude_mask(ok)

    def by_value(w, amount):  # forgets the absolute value
        k = round(amount * w.numel())
        keep = torch.ones(w.numel(), dtype=torch.bool)
        keep[w.reshape(-1).argsort()[:k]] = False
        return keep.view(w.shape)

    assert not ex.check_magnitude_mask(by_value)


def test_distillation_loss_checker():
    import torch.nn.functional as F

    assert ex.check_distillation_loss(ex.distillation_loss_reference, trials=10)

    def ok(student_logits, teacher_logits, targets, T, alpha):
        pt = F.softmax(teacher_logits / T, -1)
        kl = (pt * (pt.log() - F.log_softmax(student_logits / T, -1))).sum(-1).mean()
        return alpha * T * T * kl + (1 - alpha) * F.cross_entropy(student_logits, targets)

    assert ex.check_distillation_loss(ok)

    def no_t2(student_logits, teacher_logits, targets, T, alpha):
        pt = F.softmax(teacher_logits / T, -1)
        kl = (pt * (pt.log() - F.log_softmax(student_logits / T, -1))).sum(-1).mean()
        return alpha * kl + (1 - alpha) * F.cross_entropy(student_logits, targets)

    assert not ex.check_distillation_loss(no_t2)
