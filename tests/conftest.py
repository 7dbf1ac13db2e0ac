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


@pytest.fixture(scope="module")
def one_thread_per_module():
    """``one_thread`` for a whole module: ``pytestmark = usefixtures("one_thread_per_module")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
