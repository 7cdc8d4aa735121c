"""Shared test fixtures."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The book's models are tiny: one torch thread is fastest and avoids oversubscribing the
    2-core machine when pytest-xdist runs two workers (the previous setting is restored)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
