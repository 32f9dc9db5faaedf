"""Test environment: offline, deterministic, quiet. Set before transformers / huggingface_hub are imported."""

import os


os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global RNG state."""
    import random

    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture
def single_thread():
    """One intra-op thread for the test: tiny convs are dominated by thread start-up on a shared 2-core machine.

    A folder or module opts in with ``pytestmark = pytest.mark.usefixtures("single_thread")``."""
    from hf_eff.bench.meters import single_thread as one_thread

    with one_thread():
        yield
