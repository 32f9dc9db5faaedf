"""``push_to_hub`` of every model family, with the Hub replaced by a capture of the upload (no network).

``HfApi.create_repo`` and ``HfApi.create_commit`` are patched (HF_CONVENTIONS §5): whatever path the push takes
(``ModelCardMixin.push_to_hub``, ``Trainer.push_to_hub``), the files it would send arrive at ``create_commit`` as
``CommitOperationAdd`` operations, read here before the temporary folder disappears. ``upload_folder`` also asks
the Hub to validate the card's YAML (here the card is parsed locally instead), and with ``hf_xet`` installed it
streams through its own pipeline rather than one ``create_commit`` (switched off with ``HF_HUB_DISABLE_XET``).
"""

from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import numpy as np
import pytest
import torch
from huggingface_hub import CommitOperationAdd, HfApi, ModelCard
from safetensors.torch import load


PICKLED = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


@pytest.fixture
def hub(monkeypatch):
    """Files of the last push, ``{path_in_repo: bytes}``."""
    uploaded: dict[str, bytes] = {}

    def create_repo(self, repo_id, **kwargs):
        return SimpleNamespace(repo_id=repo_id)

    def create_commit(self, repo_id, operations, **kwargs):
        uploaded.clear()
        for op in operations:
            assert isinstance(op, CommitOperationAdd), f"unexpected operation {op!r}"
            source = op.path_or_fileobj
            if isinstance(source, (str, Path)):
                uploaded[op.path_in_repo] = Path(source).read_bytes()
            elif isinstance(source, bytes):
                uploaded[op.path_in_repo] = source
            else:
                uploaded[op.path_in_repo] = source.read()
        return SimpleNamespace(commit_url=f"https://hub.invalid/{repo_id}", oid="0" * 40, pr_url=None)

    def validate_yaml(self, content, **kwargs):
        ModelCard(content, ignore_metadata_errors=False)  # raises on YAML the Hub would reject as unparsable

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(HfApi, "_validate_yaml", validate_yaml)
    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    return uploaded


def _card(uploaded: dict[str, bytes]) -> ModelCard:
    return ModelCard(uploaded["README.md"].decode())


def _assert_safe_push(uploaded: dict[str, bytes], family_tag: str) -> ModelCard:
    assert {"README.md", "config.json", "model.safetensors"} <= set(uploaded), sorted(uploaded)
    pickled = [name for name in uploaded if name.endswith(PICKLED)]
    assert not pickled, f"pickled files uploaded: {pickled}"
    assert load(uploaded["model.safetensors"])  # a real safetensors file with tensors in it
    card = _card(uploaded)
    assert card.data.library_name == "hf_eff"
    assert "hf_eff" in card.data.tags and family_tag in card.data.tags
    return card


def test_revbifpn_uploads_config_weights_and_card_with_its_size(hub):
    from hf_eff import RevBiFPNConfig, RevBiFPNForImageClassification

    config = RevBiFPNConfig(
        stem_factor=2, channels=[12, 16, 24, 32], neck_channels=[12, 16, 24, 40], fc_features=48, num_labels=5
    )
    model = RevBiFPNForImageClassification(config)
    model.push_to_hub("me/revbifpn")
    card = _assert_safe_push(hub, "revbifpn")
    assert f"Parameters: {sum(p.numel() for p in model.parameters()):,}" in card.text
    assert set(load(hub["model.safetensors"])) == set(model.state_dict())


def test_craftmaps_uploads_the_fitted_map_and_card(hub):
    from sklearn.datasets import load_digits

    from hf_eff import CraftMapsConfig, CraftMapsForClassification

    x, y = load_digits(return_X_y=True)
    config = CraftMapsConfig(num_features=64, n_components=64, num_labels=10, seed=1)
    model = CraftMapsForClassification(config).fit((x[:300].astype(np.float32), y[:300]))
    model.push_to_hub("me/craftmaps")
    card = _assert_safe_push(hub, "craftmaps")
    assert "fitted on 300 samples" in card.text
    weights = load(hub["model.safetensors"])
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(weights[name], tensor, msg=name)


def test_video_bgsub_uploads_settings_and_measured_mask_f1(hub):
    from huggingface_hub import EvalResult

    import hf_eff
    import hf_eff.metrics
    from hf_eff.video import make_handheld_pair

    pair = make_handheld_pair(6, 8, height=48, width=64, seed=1)
    model = hf_eff.VideoBackgroundSubtractionModel(hf_eff.VideoBackgroundSubtractionConfig(verify_window=3))
    masks = model(pair.foreground, pair.background, return_frames=False).masks
    f1 = hf_eff.metrics.load("mask_f1").compute(predictions=list(masks), references=list(pair.masks))["f1"]
    model.card_metadata = {
        "model_name": "bgsub",
        "eval_results": [
            EvalResult(
                task_type="video-background-subtraction",
                dataset_type="synthetic-handheld",
                dataset_name="synthetic handheld pair",
                metric_type="mask_f1",
                metric_value=f1,
            )
        ],
    }
    model.push_to_hub("me/bgsub")
    card = _assert_safe_push(hub, "background-subtraction")
    assert f"| synthetic handheld pair | mask_f1 | {f1:.4f} |" in card.text
    assert card.data.eval_results[0].metric_value == pytest.approx(f1)
    assert b'"verify_window": 3' in hub["config.json"]


def test_spdf_uploads_weights_masks_and_card_and_nothing_pickled(hub, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel, TrainingArguments

    from hf_eff import SparsePretrainer, SparsityConfig
    from hf_eff.sparsity.checkpointing import MASKS_FILENAME

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=32, n_positions=8))
    ids = torch.randint(0, 32, (8, 8)).tolist()
    from datasets import Dataset

    args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4, report_to="none", use_cpu=True
    )
    trainer = SparsePretrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict({"input_ids": ids, "labels": ids}),
        sparsity_config=SparsityConfig(sparsity=0.5),
    )
    trainer.train()
    trainer.push_to_hub(commit_message="sparse")
    card = _assert_safe_push(hub, "spdf")
    assert MASKS_FILENAME in hub
    masks = load(hub[MASKS_FILENAME])
    assert masks and all(set(m.unique().tolist()) <= {0, 1} for m in masks.values())
    assert f"{100 * trainer.flops_report()['sparsity']:.2f}%" in card.text
