"""HD-CNN tests run single-threaded: these tiny models are slower with two threads on a busy 2-core machine."""

import pytest


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
