"""3D volume data: synthetic BraTS-like volumes, the BraTS folder reader, the offline tissue volume, crops."""

import numpy as np
import pytest
import torch

from hf_eff.data.volumes import (
    VolumeCropDataset,
    find_brats_cases,
    load_brats,
    load_tissue_volume,
    make_synthetic_brats,
)


def test_synthetic_brats_has_nested_regions_and_four_modalities():
    volume = make_synthetic_brats((24, 28, 20), seed=3)
    assert volume.image.shape == (4, 24, 28, 20) and volume.image.dtype == np.float32
    assert set(np.unique(volume.labels).tolist()) == {0, 1, 2, 4}
    # the enhancing tumour is brightest on T1ce, the oedema on FLAIR
    t1ce, flair = volume.image[1], volume.image[3]
    assert t1ce[volume.labels == 4].mean() > t1ce[volume.labels == 2].mean()
    assert flair[volume.labels == 2].mean() > flair[volume.labels == 0].mean()
    again = make_synthetic_brats((24, 28, 20), seed=3)
    assert np.array_equal(again.image, volume.image)
    with pytest.raises(ValueError, match="shape"):
        make_synthetic_brats((4, 24, 24))


def _write_case(folder, name, shape=(12, 10, 8), seg=True):
    nib = pytest.importorskip("nibabel")
    case = folder / name
    case.mkdir(parents=True)
    volume = make_synthetic_brats(shape, seed=len(name))
    for c, modality in enumerate(("t1", "t1ce", "t2", "flair")):
        nib.save(
            nib.Nifti1Image(volume.image[c] * 100 + 500 * (volume.image[c] != 0), np.eye(4)),
            case / f"{name}_{modality}.nii.gz",
        )
    if seg:
        nib.save(nib.Nifti1Image(volume.labels.astype(np.uint8), np.eye(4)), case / f"{name}_seg.nii.gz")
    return volume


def test_brats_folder_layout_is_read(tmp_path):
    root = tmp_path / "MICCAI_BraTS2020_TrainingData"
    first = _write_case(root, "BraTS20_Training_001")
    _write_case(root, "BraTS20_Training_002")
    (root / "name_mapping.csv").write_text("x\n")
    assert [p.name for p in find_brats_cases(tmp_path)] == ["BraTS20_Training_001", "BraTS20_Training_002"]
    cases = load_brats(root)
    assert len(cases) == 2 and cases[0].image.shape == (4, 12, 10, 8)
    assert np.array_equal(cases[0].labels, first.labels)
    brain = cases[0].image[0] != 0
    assert abs(cases[0].image[0][brain].mean()) < 1e-4  # z-scored inside the brain


def test_brats_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        find_brats_cases(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no BraTS case folder"):
        find_brats_cases(tmp_path)
    _write_case(tmp_path, "BraTS2021_00000", seg=False)
    with pytest.raises(FileNotFoundError, match="_seg"):
        load_brats(tmp_path)
    assert load_brats(tmp_path, require_labels=False)[0].labels.sum() == 0


def test_tissue_volume_from_nilearn_templates():
    pytest.importorskip("nilearn")
    volume = load_tissue_volume(downsample=4)
    assert volume.image.shape == (1, 49, 58, 47) and volume.labels.shape == (49, 58, 47)
    counts = np.bincount(volume.labels.ravel(), minlength=3)
    assert counts.min() > 1000  # background/CSF, grey and white matter all present
    t1 = volume.image[0]
    assert t1[volume.labels == 2].mean() > t1[volume.labels == 1].mean()  # white matter brighter on T1


def test_crops_are_fixed_size_reproducible_and_padded():
    volume = make_synthetic_brats((20, 20, 12), seed=0)
    data = VolumeCropDataset([volume], crop_size=(16, 16, 16), samples_per_volume=3, foreground_fraction=1.0)
    assert len(data) == 3
    item = data[1]
    assert item["pixel_values"].shape == (4, 16, 16, 16) and item["labels"].shape == (16, 16, 16)
    assert item["labels"].dtype == torch.int64 and (item["labels"] > 0).any()
    assert torch.equal(data[1]["pixel_values"], item["pixel_values"])
    with pytest.raises(ValueError, match="crop_size"):
        VolumeCropDataset([volume], crop_size=(16, 16))
