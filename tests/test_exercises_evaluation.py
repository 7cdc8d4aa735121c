"""The pass@k exercise checker accepts a correct estimator and rejects the usual mistakes."""
from math import comb

from lib.exercises import evaluation as ex


def test_checker_accepts_reference_and_the_binomial_formula():
    assert ex.check_pass_at_k(ex.pass_at_k_reference)
    assert ex.check_pass_at_k(lambda n, c, k: 1 - comb(n - c, k) / comb(n, k))


def test_checker_rejects_plugin_and_share_and_reports_stub():
    plugin = ex.check_pass_at_k(lambda n, c, k: 1 - (1 - c / n) ** k)
    assert not plugin and plugin.attempted
    assert not ex.check_pass_at_k(lambda n, c, k: c / n)

    def stub(n, c, k):
        raise NotImplementedError

    report = ex.check_pass_at_k(stub)
    assert not report and not report.attempted
