"""Dice and 95th-percentile Hausdorff distance per region, with the BraTS conventions for empty regions.

Inputs are label maps (one integer volume per case, any size; predictions already decoded from logits, e.g. with
``hf_eff.models.rev_unet3d.logits_to_label_map``). Regions default to BraTS's nested WT = {1, 2, 4},
TC = {1, 4}, ET = {4}; pass ``regions={"GM": [1], "WM": [2]}`` for other tasks.

Empty regions (the BraTS challenge convention): when both the prediction and the reference are empty, Dice = 1
and HD95 = 0; when exactly one is empty, Dice = 0 and HD95 = ``empty_hd95`` (373.13 mm, the diagonal of the
240 x 240 x 155 BraTS grid). HD95 is the larger of the two directed 95th percentiles of the distances between
the surface voxels (the voxels a one-voxel 6-connected erosion removes), in ``spacing`` units: the definition
of MONAI's ``compute_hausdorff_distance(percentile=95)``, which the tests compare against when MONAI is installed.

Results are averaged over cases: ``dice_<region>``, ``hd95_<region>``, ``dice_mean`` and ``hd95_mean``.

Use from ``Trainer``::

    metric = hf_eff.metrics.load("brats_segmentation")
    def compute_metrics(eval_pred):
        predictions = logits_to_label_map(torch.from_numpy(eval_pred.predictions), "regions", ...)
        return metric.compute(predictions=predictions.numpy(), references=eval_pred.label_ids)
"""

import datasets
import evaluate
import numpy as np


BRATS_REGIONS = {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)}
BRATS_EMPTY_HD95 = 373.13

_DESCRIPTION = __doc__
_KWARGS_DESCRIPTION = """
Args:
    predictions: label maps, one (X, Y, Z) integer array per case.
    references: label maps of the same shapes.
    regions: dict region name -> label values in the region (default: BraTS WT / TC / ET).
    spacing: voxel size per axis for HD95 (default 1 mm).
    include_hd95: compute HD95 (slower than Dice) or not.
    empty_hd95: HD95 when exactly one of prediction and reference is empty.
Returns:
    dice_<region>, hd95_<region> (means over cases), dice_mean, hd95_mean.
Examples:
    >>> metric = hf_eff.metrics.load("brats_segmentation")
    >>> metric.compute(predictions=[pred], references=[truth])["dice_WT"]
"""


def dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Binary Dice; 1.0 when both masks are empty (BraTS)."""
    total = prediction.sum() + reference.sum()
    if total == 0:
        return 1.0
    return float(2.0 * np.logical_and(prediction, reference).sum() / total)


def _surface(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return mask ^ ndimage.binary_erosion(mask)


def hausdorff95(
    prediction: np.ndarray, reference: np.ndarray, spacing=(1.0, 1.0, 1.0), empty: float = BRATS_EMPTY_HD95
) -> float:
    """max of the directed 95th-percentile surface distances; 0 if both empty, ``empty`` if one is."""
    from scipy import ndimage

    has_pred, has_ref = bool(prediction.any()), bool(reference.any())
    if not has_pred and not has_ref:
        return 0.0
    if has_pred != has_ref:
        return float(empty)
    surface_pred, surface_ref = _surface(prediction), _surface(reference)
    to_ref = ndimage.distance_transform_edt(~surface_ref, sampling=spacing)[surface_pred]
    to_pred = ndimage.distance_transform_edt(~surface_pred, sampling=spacing)[surface_ref]
    return float(max(np.percentile(to_ref, 95), np.percentile(to_pred, 95)))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class BratsSegmentation(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        volume = datasets.Sequence(datasets.Sequence(datasets.Sequence(datasets.Value("int16"))))
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Menze et al., The Multimodal Brain Tumor Image Segmentation Benchmark (BRATS), IEEE TMI 2015",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": volume, "references": volume}),
        )

    def _compute(
        self,
        predictions,
        references,
        regions: dict | None = None,
        spacing=(1.0, 1.0, 1.0),
        include_hd95: bool = True,
        empty_hd95: float = BRATS_EMPTY_HD95,
    ) -> dict[str, float]:
        regions = dict(BRATS_REGIONS if regions is None else regions)
        if not regions:
            raise ValueError("regions must name at least one region")
        if len(spacing) != 3:
            raise ValueError(f"spacing must have 3 entries, got {spacing}")
        per_region: dict[str, list[float]] = {f"dice_{r}": [] for r in regions}
        if include_hd95:
            per_region.update({f"hd95_{r}": [] for r in regions})
        for prediction, reference in zip(predictions, references):
            prediction, reference = np.asarray(prediction), np.asarray(reference)
            if prediction.shape != reference.shape or prediction.ndim != 3:
                raise ValueError(
                    f"each prediction and reference must be a 3D label map of the same shape, got "
                    f"{prediction.shape} and {reference.shape}"
                )
            for name, values in regions.items():
                p, g = np.isin(prediction, list(values)), np.isin(reference, list(values))
                per_region[f"dice_{name}"].append(dice(p, g))
                if include_hd95:
                    per_region[f"hd95_{name}"].append(hausdorff95(p, g, spacing, empty_hd95))
        result = {key: float(np.mean(v)) for key, v in per_region.items()}
        result["dice_mean"] = float(np.mean([result[f"dice_{r}"] for r in regions]))
        if include_hd95:
            result["hd95_mean"] = float(np.mean([result[f"hd95_{r}"] for r in regions]))
        return result
