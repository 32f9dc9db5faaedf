from unittest import mock

import pytest
import torch
from huggingface_hub import ModelCard
from transformers import PreTrainedConfig, PreTrainedModel

from hf_eff.modelcard import ModelCardMixin, render_model_card


class TinyCardConfig(PreTrainedConfig):
    model_type = "hf_eff_test_card"
    width: int = 4


class TinyCardModel(ModelCardMixin, PreTrainedModel):
    config_class = TinyCardConfig
    model_card_template = "generic"

    def __init__(self, config):
        super().__init__(config)
        self.linear = torch.nn.Linear(config.width, 2)
        self.post_init()

    def model_card_data(self):
        return {"tags": ["image-classification"], "pipeline_tag": "image-classification", "datasets": ["digits"]}


def test_saved_card_parses_and_carries_metadata(tmp_path):
    model = TinyCardModel(TinyCardConfig())
    model.card_metadata = {"metrics": ["accuracy"]}
    model.save_pretrained(tmp_path)
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.library_name == "hf_eff"
    assert card.data.tags[0] == "hf_eff" and "image-classification" in card.data.tags
    assert card.data.datasets == ["digits"] and card.data.metrics == ["accuracy"]
    assert card.data.pipeline_tag == "image-classification"
    assert "TinyCardModel" in card.text and '"width": 4' in card.text
    assert (tmp_path / "model.safetensors").exists()


def test_push_to_hub_uploads_our_card(tmp_path):
    uploaded = {}

    def fake_upload_folder(self, *, repo_id, folder_path, **kwargs):
        from pathlib import Path

        uploaded["files"] = sorted(p.name for p in Path(folder_path).iterdir())
        uploaded["card"] = ModelCard.load(Path(folder_path) / "README.md")
        return "ok"

    repo = mock.Mock(repo_id="me/tiny")
    with (
        mock.patch("huggingface_hub.HfApi.create_repo", return_value=repo),
        mock.patch("huggingface_hub.HfApi.upload_folder", fake_upload_folder),
    ):
        TinyCardModel(TinyCardConfig()).push_to_hub("me/tiny", tags=["extra"])
    assert uploaded["files"] == ["README.md", "config.json", "model.safetensors"]
    assert uploaded["card"].data.library_name == "hf_eff" and "extra" in uploaded["card"].data.tags


def test_unknown_template_names_the_known_ones():
    with pytest.raises(ValueError, match="generic"):
        render_model_card("no-such-template")
