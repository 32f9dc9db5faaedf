"""A checkpoint folder that does not exist is reported as such, not as transformers' repo-id validation error."""

import pytest

from hf_eff.sparsity.trainers import DenseFinetuneTrainer, densify


@pytest.mark.parametrize("path", ["./no/such/checkpoint", "no/such/checkpoint", "/no/such/checkpoint"])
def test_a_missing_checkpoint_folder_is_named(path, tmp_path):
    with pytest.raises(ValueError, match=f"model='{path}' is not a checkpoint folder: no such file or folder"):
        DenseFinetuneTrainer(model=path)
    with pytest.raises(ValueError, match="is not a checkpoint folder"):
        densify(tmp_path / "missing")
