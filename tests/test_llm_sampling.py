"""Tests of lib.llm.generate's sampling diagnostics (Part 5): processed distributions, many-draw sampling,
nucleus size, the chi-square goodness-of-fit helper, distinct-n."""
import numpy as np
import pytest
import torch

from lib.llm.config import LMConfig
from lib.llm.generate import (Temperature, TopK, TopP, chi_square_gof, distinct_n, generate, nucleus_size,
                              processed_probs, sample_tokens)
from lib.llm.model import TinyLM

ALPHA = 1e-4  # a correct sampler is rejected at rate ALPHA per test


def test_processed_probs_equal_transformers_warpers():
    from transformers.generation.logits_process import (LogitsProcessorList, TemperatureLogitsWarper,
                                                        TopKLogitsWarper, TopPLogitsWarper)
    torch.manual_seed(0)
    logits = torch.randn(6, 40) * 3
    ours = processed_probs(logits, [Temperature(0.8), TopK(12), TopP(0.85)])
    hf = LogitsProcessorList([TemperatureLogitsWarper(0.8), TopKLogitsWarper(12), TopPLogitsWarper(0.85)])
    torch.testing.assert_close(ours, hf(torch.zeros(6, 1, dtype=torch.long), logits.clone()).softmax(-1))
    assert processed_probs(logits[0]).shape == (40,)


def test_sampled_frequencies_pass_chi_square_and_stay_inside_the_filter():
    torch.manual_seed(1)
    logits = torch.randn(50) * 2
    for seed in range(3):
        for procs in ([], [Temperature(0.7)], [TopK(8)], [TopP(0.9)], [Temperature(1.5), TopK(20), TopP(0.95)]):
            g = torch.Generator().manual_seed(seed)
            draws = sample_tokens(logits, 20000, procs, generator=g)
            q = processed_probs(logits, procs).double().numpy()
            counts = np.bincount(draws.numpy(), minlength=50)
            assert (counts[q == 0] == 0).all()
            _, pval, dof = chi_square_gof(counts, q)
            assert pval > ALPHA and dof >= 1, (procs, pval)
    # power: the same test rejects the distribution before the temperature
    g = torch.Generator().manual_seed(0)
    counts = np.bincount(sample_tokens(logits, 20000, [Temperature(0.9)], generator=g).numpy(), minlength=50)
    assert chi_square_gof(counts, processed_probs(logits).double().numpy())[1] < ALPHA


def test_sample_tokens_draws_what_generate_draws():
    torch.manual_seed(0)
    m = TinyLM(LMConfig(vocab_size=31, d_model=16, n_layers=1, n_heads=2, n_kv_heads=1, max_seq_len=16)).eval()
    prompt = torch.tensor([[1, 2, 3]])
    procs = [Temperature(1.3), TopK(9)]
    for seed in range(5):
        out = generate(m, prompt, 1, processors=procs, do_sample=True,
                       generator=torch.Generator().manual_seed(seed))
        logits = m(prompt).logits[0, -1].detach()
        assert int(out[0, -1]) == int(sample_tokens(logits, 1, procs, torch.Generator().manual_seed(seed))[0])


def test_nucleus_is_minimal_with_mass_at_least_p():
    torch.manual_seed(2)
    logits = torch.randn(200, 30) * torch.linspace(0.2, 5, 200)[:, None]
    for p in (0.3, 0.8, 0.95):
        n = nucleus_size(logits, p)
        probs = logits.softmax(-1).sort(-1, descending=True).values
        mass = probs.cumsum(-1)
        kept = mass.gather(1, (n - 1)[:, None]).squeeze(1)
        before = torch.where(n > 1, mass.gather(1, (n - 2).clamp_min(0)[:, None]).squeeze(1), torch.zeros(200))
        assert bool((kept >= p - 1e-6).all()) and bool((before < p + 1e-6).all())
    assert int(nucleus_size(logits[0], 1e-6)) == 1


def test_chi_square_gof_pooling_and_errors():
    stat, pval, dof = chi_square_gof([50, 50, 0, 0], [0.5, 0.5, 0.0, 0.0])
    assert pval == 1.0 and dof == 1 and stat == 0.0       # cells of probability 0 are dropped
    assert chi_square_gof([10, 0, 1], [0.9, 0.1, 0.0])[1] == 0.0       # impossible draw
    from scipy.stats import chisquare
    c, q = np.array([30, 25, 45]), np.array([0.3, 0.3, 0.4])
    assert np.isclose(chi_square_gof(c, q)[1], chisquare(c, 100 * q).pvalue)
    with pytest.raises(ValueError):
        chi_square_gof([1, 2], [0.5, 0.6])
    with pytest.raises(ValueError):
        chi_square_gof([1, 2, 3], [0.5, 0.5])


def test_distinct_n_and_validation():
    assert distinct_n([[1, 2, 3], [1, 2, 3]], 2) == 0.5
    assert distinct_n([[1, 2, 3, 4]], 1) == 1.0
    assert distinct_n([[1]], 2) == 0.0
    with pytest.raises(ValueError):
        distinct_n([[1, 2]], 0)
    with pytest.raises(ValueError):
        sample_tokens(torch.zeros(2, 3), 5)
    with pytest.raises(ValueError):
        sample_tokens(torch.zeros(3), 0)
    with pytest.raises(ValueError):
        processed_probs(torch.zeros(3, dtype=torch.long))
