"""Small real image-classification sets that work offline.

- ``"digits"``: scikit-learn's 1,797 8x8 handwritten digits (ships inside scikit-learn; always present).
- ``"fashion-mnist"``: the 70,000 28x28 Fashion-MNIST images from Debian's ``dataset-fashion-mnist`` package
  (``apt-get install dataset-fashion-mnist``), with the official train/test split and a 4-way ``coarse_label``
  (upper-body / lower-or-full-body / footwear / bags) for hierarchical classifiers.

Every set has ``pixel_values`` (float32, shape (channels, H, W), values in [0, 1]) and a ``label`` ClassLabel, so a
``Trainer`` can consume it with the default collator after ``.with_format("torch")``. Any other name is a local
path or Hugging Face dataset id whose ``image``/``img`` column is converted the same way.
"""

import gzip
import os
from pathlib import Path

import datasets
import numpy as np

from hf_eff.data.external import ensure_split, load_external_dataset


FASHION_MNIST_DIR = Path(os.environ.get("HF_EFF_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
FASHION_MNIST_COARSE_CLASSES = ["upper-body", "lower-or-full-body", "footwear", "bags"]
FASHION_MNIST_COARSE = np.array([0, 1, 0, 1, 0, 2, 0, 2, 3, 2])  # fine label -> coarse label
IMAGE_DATASETS = ("digits", "fashion-mnist")


def _features(channels: int, height: int, width: int, class_names: list[str], coarse: list[str] | None = None):
    features = {
        "pixel_values": datasets.Array3D((channels, height, width), "float32"),
        "label": datasets.ClassLabel(names=class_names),
    }
    if coarse is not None:
        features["coarse_label"] = datasets.ClassLabel(names=coarse)
    return datasets.Features(features)


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST family's format): a magic number, the dimensions, then uint8 data."""
    with gzip.open(path) as file:
        raw = file.read()
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _digits(seed: int, test_size: float) -> datasets.DatasetDict:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None]  # pixel values are 0..16
    data = datasets.Dataset.from_dict(
        {"pixel_values": images, "label": bunch.target.astype(np.int64)},
        features=_features(1, 8, 8, [str(d) for d in range(10)]),
    )
    return data.train_test_split(test_size=test_size, seed=seed, stratify_by_column="label")


def _fashion_mnist(seed: int, limits: dict[str, int | None]) -> datasets.DatasetDict:
    if not FASHION_MNIST_DIR.is_dir():
        raise ValueError(
            f"Fashion-MNIST not found in {FASHION_MNIST_DIR}: install Debian's package "
            "(apt-get install dataset-fashion-mnist) or set HF_EFF_FASHION_MNIST_DIR to the folder of its IDX files"
        )
    splits = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = _read_idx(FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz")
        labels = _read_idx(FASHION_MNIST_DIR / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
        keep = _subsample(len(labels), limits[split], seed)  # before conversion: Arrow tables are slow to build
        splits[split] = datasets.Dataset.from_dict(
            {
                "pixel_values": (images[keep].astype(np.float32) / 255.0)[:, None],
                "label": labels[keep],
                "coarse_label": FASHION_MNIST_COARSE[labels[keep]],
            },
            features=_features(1, 28, 28, FASHION_MNIST_CLASSES, FASHION_MNIST_COARSE_CLASSES),
        )
    return datasets.DatasetDict(splits)


def _subsample(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded random subset of size ``limit`` (all indices, in order, without a limit)."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:limit])


def _from_images(data: datasets.DatasetDict, name: str) -> datasets.DatasetDict:
    """Convert an external dataset with an image column to ``pixel_values`` in [0, 1], channels first."""
    columns = data["train"].column_names
    image_column = next((c for c in ("pixel_values", "image", "img") if c in columns), None)
    label_column = next((c for c in ("label", "labels", "fine_label") if c in columns), None)
    if image_column is None or label_column is None:
        raise ValueError(f"{name!r} needs an image column (image/img/pixel_values) and a label column; has {columns}")
    if image_column == "pixel_values":
        return data.rename_column(label_column, "label") if label_column != "label" else data

    def convert(batch):
        arrays = [np.asarray(image, dtype=np.float32) for image in batch[image_column]]
        arrays = [a[None] if a.ndim == 2 else a.transpose(2, 0, 1) for a in arrays]
        scale = 255.0 if max(a.max() for a in arrays) > 1.0 else 1.0
        return {"pixel_values": [a / scale for a in arrays]}

    data = data.map(convert, batched=True, remove_columns=[image_column])
    return data.rename_column(label_column, "label") if label_column != "label" else data


def load_image_dataset(
    name: str = "digits",
    *,
    seed: int = 0,
    test_size: float = 0.2,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
) -> datasets.DatasetDict:
    """An image-classification set with ``train`` and ``test`` splits.

    Args:
        name: ``"digits"``, ``"fashion-mnist"``, a local path or a Hugging Face dataset id.
        seed: the split seed (digits and external sets without a test split) and the subsampling seed.
        test_size: share held out for ``test`` where the data has no official split.
        max_train_samples / max_eval_samples: keep a seeded random subset of that size.
    """
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    for argument, value in (("max_train_samples", max_train_samples), ("max_eval_samples", max_eval_samples)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{argument} must be a positive integer or None, got {value!r}")
    limits = {"train": max_train_samples, "test": max_eval_samples}
    if name == "fashion-mnist":
        return _fashion_mnist(seed, limits)
    if name == "digits":
        data = _digits(seed, test_size)
    else:
        data = _from_images(ensure_split(load_external_dataset(name), "test", test_size, seed), name)
    for split, limit in limits.items():
        data[split] = data[split].select(_subsample(len(data[split]), limit, seed))
    return data
