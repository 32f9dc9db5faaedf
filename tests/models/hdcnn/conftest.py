import pytest


@pytest.fixture(autouse=True)
def _one_thread(single_thread):
    """HD-CNN tests run single-threaded: these tiny models are slower with two threads on a busy 2-core machine."""
