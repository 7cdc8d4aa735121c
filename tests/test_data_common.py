"""lib.data.common: seeds and counts are checked the same way by every generator."""
import numpy as np
import pytest

from lib.data.common import as_rng, check_count


def test_as_rng_passes_generators_and_seeds_ints():
    g = np.random.default_rng(3)
    assert as_rng(g) is g
    assert as_rng(5).integers(1000) == np.random.default_rng(5).integers(1000)
    with pytest.raises(TypeError, match="seed must be an int"):
        as_rng(True)
    with pytest.raises(TypeError):
        as_rng(1.5)
    with pytest.raises(ValueError, match=">= 0"):
        as_rng(-1)


def test_check_count_names_the_argument():
    assert check_count(np.int64(4)) == 4 and check_count(0) == 0
    with pytest.raises(TypeError, match="n_people must be an int"):
        check_count(2.0, "n_people")
    with pytest.raises(ValueError, match="n must be >= 0"):
        check_count(-3)
