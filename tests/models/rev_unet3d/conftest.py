import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread(single_thread):
    """Tiny 3D convs are dominated by thread start-up: one thread is ~10x faster on a shared 2-core machine."""


@pytest.fixture
def brats_batch():
    """Two 16^3 synthetic BraTS crops (4 channels, labels {0, 1, 2, 4})."""
    from hf_eff.data.volumes import make_synthetic_brats

    volumes = [make_synthetic_brats((16, 16, 16), seed=s, noise=0.2) for s in (0, 1)]
    pixel_values = torch.stack([torch.from_numpy(v.image) for v in volumes])
    labels = torch.stack([torch.from_numpy(v.labels) for v in volumes])
    return pixel_values, labels
