"""``pipeline(task, model=<missing folder>)`` names the folder instead of reporting an invalid Hub repository id."""

import pytest
from transformers import pipeline

import hf_eff  # noqa: F401  (registers the tasks; imported after transformers on purpose, as isort orders it)
from hf_eff.pipelines import NoSuchFolderError, check_model_path


@pytest.mark.parametrize("task", ["craftmaps-classification", "video-background-subtraction"])
@pytest.mark.parametrize("path", ["./nosuch-hf-eff", "~/nosuch-hf-eff", "nosuch/deeper/folder"])
def test_missing_model_folder_is_named(task, path):
    with pytest.raises(NoSuchFolderError, match=f"^no such folder: {path} ") as raised:
        pipeline(task, model=path)
    assert isinstance(raised.value, OSError) and isinstance(raised.value, ValueError)


def test_missing_config_folder_is_named():
    with pytest.raises(NoSuchFolderError, match="^no such folder: ./nosuch-config "):
        pipeline("craftmaps-classification", config="./nosuch-config")


def test_existing_paths_objects_and_possible_hub_ids_pass(tmp_path):
    for fine in (tmp_path, str(tmp_path), None, object(), "org/name", "name"):
        check_model_path(fine)
