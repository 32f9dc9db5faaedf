"""The brats_segmentation evaluate metric: Dice / HD95 per region, BraTS empty-region conventions, MONAI parity."""

import importlib.util

import numpy as np
import pytest

import hf_eff.metrics
from hf_eff.data.volumes import make_synthetic_brats


def _module():
    spec = importlib.util.spec_from_file_location(
        "brats_segmentation", hf_eff.metrics.path("brats_segmentation") + "/brats_segmentation.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_perfect_and_empty_region_conventions():
    metric = hf_eff.metrics.load("brats_segmentation")
    truth = make_synthetic_brats((24, 24, 24), seed=0).labels
    no_et = np.where(truth == 4, 1, truth)  # the enhancing tumour relabelled as core: ET empty, TC unchanged
    result = metric.compute(predictions=[truth, no_et], references=[truth, no_et])
    assert result["dice_mean"] == 1.0 and result["hd95_mean"] == 0.0  # both empty ET: Dice 1, HD95 0
    missed = metric.compute(predictions=[no_et], references=[truth])
    assert missed["dice_ET"] == 0.0 and missed["hd95_ET"] == pytest.approx(373.13)
    assert missed["dice_TC"] == 1.0 and missed["dice_WT"] == 1.0
    assert "hd95_WT" not in metric.compute(predictions=[truth], references=[truth], include_hd95=False)


def test_hd95_of_a_shifted_cube_and_spacing():
    module = _module()
    a = np.zeros((20, 20, 20), bool)
    a[5:15, 5:15, 5:15] = True
    b = np.roll(a, 3, axis=0)
    assert module.hausdorff95(a, b) == pytest.approx(3.0)
    assert module.hausdorff95(a, b, spacing=(2.0, 1.0, 1.0)) == pytest.approx(6.0)
    assert module.dice(a, b) == pytest.approx(2 * 7 * 100 / 2000)


def test_custom_regions_and_shape_errors():
    metric = hf_eff.metrics.load("brats_segmentation")
    labels = np.zeros((8, 8, 8), np.int64)
    labels[2:6, 2:6, 2:6] = 2
    result = metric.compute(predictions=[labels], references=[labels], regions={"WM": [2]})
    assert result == {"dice_WM": 1.0, "hd95_WM": 0.0, "dice_mean": 1.0, "hd95_mean": 0.0}
    with pytest.raises(ValueError, match="same shape"):
        metric.compute(predictions=[labels], references=[labels[:4]])


def test_matches_monai_dice_and_hausdorff95():
    monai_metrics = pytest.importorskip("monai.metrics")
    import torch

    module = _module()
    pred = make_synthetic_brats((32, 32, 32), seed=1).labels
    truth = make_synthetic_brats((32, 32, 32), seed=2).labels
    for values in ((1, 2, 4), (1, 4), (4,)):
        p, g = np.isin(pred, values), np.isin(truth, values)
        tp, tg = torch.from_numpy(p)[None, None].float(), torch.from_numpy(g)[None, None].float()
        expected_hd = monai_metrics.compute_hausdorff_distance(tp, tg, percentile=95).item()
        expected_dice = monai_metrics.compute_dice(tp, tg).item()
        assert module.hausdorff95(p, g) == pytest.approx(expected_hd, rel=1e-5)
        assert module.dice(p, g) == pytest.approx(expected_dice, rel=1e-5)
