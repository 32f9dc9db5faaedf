"""3D volumes with voxel labels: the user's BraTS scans, a real brain volume that ships with a PyPI package, and a
synthetic BraTS-like generator.

- :func:`load_brats` reads the standard BraTS 2020/2021 layout (one folder per case holding
  ``<case>_{t1,t1ce,t2,flair,seg}.nii[.gz]``) with nibabel (the ``[medical]`` extra). Channels are ordered
  T1, T1ce, T2, FLAIR and z-scored inside the brain (non-zero voxels); labels keep the BraTS values {0, 1, 2, 4}.
- :func:`load_tissue_volume` builds a real 3-class tissue segmentation (0 background and CSF, 1 grey matter,
  2 white matter) from the MNI ICBM152 2009a T1 template and its tissue-probability maps bundled in the
  ``nilearn`` wheel (read directly with nibabel; nothing is downloaded). Not a tumour set: a real anatomy for
  training and memory checks offline.
- :func:`make_synthetic_brats` draws a brain-like ellipsoid with a nested tumour (oedema 2 around enhancing
  rim 4 around a necrotic core 1) and four modalities whose contrasts differ per tissue, for tests.

:class:`VolumeCropDataset` turns any of them into fixed-size random crops for ``Trainer``.
"""

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


BRATS_MODALITIES = ("t1", "t1ce", "t2", "flair")
TISSUE_CLASSES = ("background", "grey_matter", "white_matter")


@dataclass
class LabelledVolume:
    """One scan: ``image`` (channels, X, Y, Z) float32, ``labels`` (X, Y, Z) int64, voxel ``spacing`` in mm."""

    image: np.ndarray
    labels: np.ndarray
    name: str
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)


def _nibabel():
    try:
        import nibabel
    except ImportError as error:  # pragma: no cover - nibabel is in the [medical] and [test] extras
        raise ImportError("reading NIfTI volumes needs nibabel: pip install 'hf_eff[medical]'") from error
    return nibabel


def normalize_intensity(image: np.ndarray) -> np.ndarray:
    """Per-channel z-score over the non-zero (brain) voxels; the background stays 0."""
    out = np.zeros(image.shape, np.float32)
    for c, channel in enumerate(image):
        brain = channel != 0
        if brain.any():
            values = channel[brain]
            out[c][brain] = (values - values.mean()) / (values.std() + 1e-8)
    return out


# ---- BraTS (the user's own copy) ------------------------------------------------------------------------------


def _modality_file(case: Path, suffix: str) -> Path | None:
    for path in sorted(case.iterdir()):
        if re.fullmatch(rf".*_{suffix}\.nii(\.gz)?", path.name):
            return path
    return None


def find_brats_cases(root: str | Path) -> list[Path]:
    """Case folders under ``root`` (searched two levels deep) that hold all four modalities."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"BraTS root {str(root)!r} is not a directory")
    candidates = [p for p in [root, *root.iterdir(), *root.glob("*/*")] if p.is_dir()]
    cases = [p for p in candidates if all(_modality_file(p, m) is not None for m in BRATS_MODALITIES)]
    if not cases:
        raise FileNotFoundError(
            f"no BraTS case folder under {str(root)!r}: expected folders holding "
            "<case>_t1.nii.gz, <case>_t1ce.nii.gz, <case>_t2.nii.gz, <case>_flair.nii.gz (and <case>_seg.nii.gz)"
        )
    return sorted(dict.fromkeys(cases))


def load_brats_case(case: str | Path, require_labels: bool = True) -> LabelledVolume:
    """One BraTS case folder -> image (4, 240, 240, 155) z-scored, labels {0, 1, 2, 4} (zeros if no seg file
    and ``require_labels=False``, as in validation sets)."""
    nib = _nibabel()
    case = Path(case)
    channels, spacing = [], (1.0, 1.0, 1.0)
    for modality in BRATS_MODALITIES:
        path = _modality_file(case, modality)
        if path is None:
            raise FileNotFoundError(f"{case} has no *_{modality}.nii[.gz] file")
        img = nib.load(str(path))
        channels.append(np.asanyarray(img.dataobj, dtype=np.float32))
        spacing = tuple(float(z) for z in img.header.get_zooms()[:3])
    image = normalize_intensity(np.stack(channels))
    seg = _modality_file(case, "seg")
    if seg is None:
        if require_labels:
            raise FileNotFoundError(f"{case} has no *_seg.nii[.gz] label file")
        labels = np.zeros(image.shape[1:], np.int64)
    else:
        labels = np.asanyarray(nib.load(str(seg)).dataobj).astype(np.int64)
        unexpected = sorted(set(np.unique(labels).tolist()) - {0, 1, 2, 4})
        if unexpected:
            raise ValueError(f"{seg} holds label values {unexpected}; BraTS labels are 0, 1, 2, 4")
    return LabelledVolume(image, labels, case.name, spacing)


def load_brats(root: str | Path, limit: int | None = None, require_labels: bool = True) -> list[LabelledVolume]:
    """All (or the first ``limit``) BraTS cases under ``root``."""
    cases = find_brats_cases(root)[:limit]
    return [load_brats_case(case, require_labels) for case in cases]


# ---- a real brain volume shipped by a PyPI package ---------------------------------------------------------------


def _nilearn_data_dir() -> Path:
    spec = importlib.util.find_spec("nilearn")
    if spec is None or spec.origin is None:
        raise ImportError(
            "load_tissue_volume needs the MNI152 templates bundled in nilearn: pip install 'hf_eff[medical]' "
            "(or pip install nilearn)"
        )
    return Path(spec.origin).parent / "datasets" / "data"


def _block_mean(volume: np.ndarray, factor: int) -> np.ndarray:
    shape = [s // factor * factor for s in volume.shape]
    v = volume[: shape[0], : shape[1], : shape[2]]
    return v.reshape(shape[0] // factor, factor, shape[1] // factor, factor, shape[2] // factor, factor).mean(
        (1, 3, 5)
    )


def load_tissue_volume(downsample: int = 2) -> LabelledVolume:
    """MNI ICBM152 2009a T1 (1 channel, z-scored) with a 3-class tissue map from its probability maps.

    Each voxel takes the most probable of {other (CSF, background), grey matter, white matter}. ``downsample``
    averages blocks of ``downsample**3`` voxels (1 mm -> 2 mm: 98 x 116 x 94).
    """
    if not isinstance(downsample, int) or downsample < 1:
        raise ValueError(f"downsample must be a positive int, got {downsample!r}")
    nib = _nibabel()
    folder = _nilearn_data_dir()

    def read(kind: str) -> np.ndarray:
        path = folder / f"mni_icbm152_{kind}_tal_nlin_sym_09a_converted.nii.gz"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing from the installed nilearn (expected in nilearn >= 0.10)")
        return _block_mean(np.asanyarray(nib.load(str(path)).dataobj, dtype=np.float32), downsample)

    t1, gm, wm = read("t1"), read("gm"), read("wm")
    other = np.clip(1.0 - gm - wm, 0.0, 1.0)
    labels = np.argmax(np.stack([other, gm, wm]), axis=0).astype(np.int64)
    return LabelledVolume(normalize_intensity(t1[None]), labels, "mni152_2009a_tissue", (float(downsample),) * 3)


# ---- synthetic BraTS-like volumes -----------------------------------------------------------------------------


def make_synthetic_brats(
    shape: tuple[int, int, int] = (48, 48, 48), seed: int = 0, noise: float = 0.3, with_tumour: bool = True
) -> LabelledVolume:
    """A brain-like ellipsoid with a nested tumour: oedema (2) ⊃ enhancing rim (4) ⊃ necrotic core (1).

    So WT = {1, 2, 4} ⊃ TC = {1, 4} ⊃ ET = {4}, as in BraTS. The four channels mimic T1, T1ce, T2 and FLAIR
    contrasts (enhancing tumour bright on T1ce, oedema bright on FLAIR and T2), plus Gaussian noise.
    """
    if len(shape) != 3 or any(int(s) != s or s < 8 for s in shape):
        raise ValueError(f"shape must be 3 ints >= 8, got {shape}")
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    brain = ((grid / np.array([0.85, 0.8, 0.75])[:, None, None, None]) ** 2).sum(0) <= 1
    labels = np.zeros(shape, np.int64)
    if with_tumour:
        centre = rng.uniform(-0.3, 0.3, 3)[:, None, None, None]
        radii = rng.uniform(0.4, 0.55, 3)[:, None, None, None]
        r = np.sqrt((((grid - centre) / radii) ** 2).sum(0))
        labels[(r <= 1.0) & brain] = 2  # oedema
        labels[(r <= 0.65) & brain] = 4  # enhancing rim
        labels[(r <= 0.35) & brain] = 1  # necrotic core
    # mean intensity of (background, brain, necrosis, oedema, -, enhancing) per modality
    contrast = {
        "t1": (0.0, 1.0, 0.4, 0.7, 0.0, 0.8),
        "t1ce": (0.0, 1.0, 0.3, 0.8, 0.0, 2.2),
        "t2": (0.0, 1.0, 1.8, 1.6, 0.0, 1.2),
        "flair": (0.0, 1.0, 0.9, 2.0, 0.0, 1.3),
    }
    tissue = np.where(brain, 1, 0)
    tissue = np.where(labels == 1, 2, np.where(labels == 2, 3, np.where(labels == 4, 5, tissue)))
    image = np.stack([np.asarray(contrast[m], np.float32)[tissue] for m in BRATS_MODALITIES])
    image += noise * rng.standard_normal(image.shape).astype(np.float32) * brain
    return LabelledVolume(normalize_intensity(image), labels, f"synthetic_brats_{seed}")


# ---- training crops -------------------------------------------------------------------------------------------


class VolumeCropDataset(torch.utils.data.Dataset):
    """Random fixed-size crops of labelled volumes: ``{"pixel_values": (C, *crop), "labels": crop}``.

    Volumes smaller than the crop are zero-padded (label 0). With ``foreground_fraction`` > 0 that share of the
    crops is centred on a random labelled (non-zero) voxel, as tumours fill a small part of a scan. Crops are
    drawn from ``seed + index``, so an index always gives the same crop (reproducible evaluation).
    """

    def __init__(
        self,
        volumes: list[LabelledVolume],
        crop_size: tuple[int, int, int],
        samples_per_volume: int = 4,
        foreground_fraction: float = 0.5,
        seed: int = 0,
    ):
        if not volumes:
            raise ValueError("volumes must not be empty")
        if len(crop_size) != 3 or any(int(s) != s or s < 1 for s in crop_size):
            raise ValueError(f"crop_size must be 3 positive ints, got {crop_size}")
        if samples_per_volume < 1 or not 0 <= foreground_fraction <= 1:
            raise ValueError("samples_per_volume must be >= 1 and foreground_fraction in [0, 1]")
        self.volumes, self.crop_size = volumes, tuple(int(s) for s in crop_size)
        self.samples_per_volume, self.foreground_fraction, self.seed = samples_per_volume, foreground_fraction, seed

    def __len__(self) -> int:
        return len(self.volumes) * self.samples_per_volume

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        volume = self.volumes[index // self.samples_per_volume]
        rng = np.random.default_rng(self.seed + index)
        image, labels = volume.image, volume.labels
        pad = [(0, max(0, c - s)) for c, s in zip(self.crop_size, labels.shape)]
        if any(p for _, p in pad):
            image = np.pad(image, [(0, 0), *pad])
            labels = np.pad(labels, pad)
        foreground = np.argwhere(labels > 0) if rng.random() < self.foreground_fraction else np.empty((0, 3))
        starts = []
        for axis, (c, s) in enumerate(zip(self.crop_size, labels.shape)):
            if len(foreground):
                centre = foreground[rng.integers(len(foreground))][axis]
                starts.append(int(np.clip(centre - c // 2, 0, s - c)))
            else:
                starts.append(int(rng.integers(0, s - c + 1)))
        box = tuple(slice(a, a + c) for a, c in zip(starts, self.crop_size))
        return {
            "pixel_values": torch.from_numpy(np.ascontiguousarray(image[(slice(None), *box)])),
            "labels": torch.from_numpy(np.ascontiguousarray(labels[box])),
        }


__all__ = [
    "BRATS_MODALITIES",
    "TISSUE_CLASSES",
    "LabelledVolume",
    "VolumeCropDataset",
    "find_brats_cases",
    "load_brats",
    "load_brats_case",
    "load_tissue_volume",
    "make_synthetic_brats",
    "normalize_intensity",
]
