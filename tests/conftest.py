"""Shared test fixtures."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Small tensor ops are faster on one thread (and the test machine is shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
