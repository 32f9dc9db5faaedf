import gzip

import numpy as np
import pytest

from hf_eff.data import images, load_image_dataset


def test_digits_shapes_splits_and_labels():
    data = load_image_dataset("digits")
    assert len(data["train"]) + len(data["test"]) == 1797
    assert len(data["test"]) == 360
    sample = data["train"].with_format("numpy")[0]["pixel_values"]
    assert sample.shape == (1, 8, 8) and sample.dtype == np.float32
    assert sample.min() >= 0.0 and sample.max() <= 1.0
    assert data["train"].features["label"].names == [str(d) for d in range(10)]
    assert set(data["test"]["label"]) == set(range(10))  # stratified


def test_digits_split_is_deterministic_under_a_seed():
    a = load_image_dataset("digits", seed=5)["test"]["label"]
    assert a == load_image_dataset("digits", seed=5)["test"]["label"]
    assert a != load_image_dataset("digits", seed=6)["test"]["label"]


def test_subsampling_limits():
    data = load_image_dataset("digits", max_train_samples=100, max_eval_samples=30)
    assert (len(data["train"]), len(data["test"])) == (100, 30)


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_reader_and_coarse_labels(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 10)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    monkeypatch.setattr(images, "FASHION_MNIST_DIR", tmp_path)
    data = load_image_dataset("fashion-mnist")
    assert (len(data["train"]), len(data["test"])) == (20, 10)
    assert np.asarray(data["train"][3]["pixel_values"]).shape == (1, 28, 28)
    names = data["train"].features["coarse_label"].names
    coarse = {data["train"][i]["label"]: names[data["train"][i]["coarse_label"]] for i in range(10)}
    assert coarse[5] == coarse[7] == coarse[9] == "footwear"  # sandal, sneaker, ankle boot
    assert coarse[0] == coarse[2] == coarse[4] == coarse[6] == "upper-body"


def test_missing_fashion_mnist_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(ValueError, match="dataset-fashion-mnist"):
        load_image_dataset("fashion-mnist")


def test_local_saved_dataset_with_an_image_column(tmp_path):
    import datasets

    rng = np.random.default_rng(0)
    local = datasets.Dataset.from_dict(
        {"img": [rng.integers(0, 256, (6, 5, 3)).astype(np.uint8) for _ in range(10)], "labels": list(range(10))}
    )
    local.save_to_disk(str(tmp_path / "ds"))
    data = load_image_dataset(str(tmp_path / "ds"), test_size=0.2)
    sample = np.asarray(data["train"][0]["pixel_values"])
    assert sample.shape == (3, 6, 5) and sample.max() <= 1.0
    assert len(data["test"]) == 2 and "label" in data["train"].column_names


def test_unknown_dataset_and_bad_arguments():
    with pytest.raises(ValueError, match="not-a-dataset"):
        load_image_dataset("not-a-dataset")
    with pytest.raises(ValueError, match="test_size"):
        load_image_dataset(test_size=0)
    with pytest.raises(ValueError, match="max_train_samples"):
        load_image_dataset(max_train_samples=-1)


@pytest.mark.skipif(not images.FASHION_MNIST_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_has_the_official_split():
    train_images = images._read_idx(images.FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz")
    test_labels = images._read_idx(images.FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    assert train_images.shape == (60000, 28, 28)
    assert np.bincount(test_labels).tolist() == [1000] * 10
    data = load_image_dataset("fashion-mnist", max_train_samples=50, max_eval_samples=20, seed=1)
    assert (len(data["train"]), len(data["test"])) == (50, 20)
    assert (
        data["train"]["label"] == load_image_dataset("fashion-mnist", max_train_samples=50, seed=1)["train"]["label"]
    )
