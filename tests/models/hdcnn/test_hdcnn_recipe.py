"""The HD-CNN recipe end to end on real offline images (digits), and resuming it."""

import numpy as np
import torch


def _run(output_dir, resume=False):
    from transformers import TrainingArguments

    from hf_eff import HDCNNConfig, load_image_dataset
    from hf_eff.models.hdcnn import train_hdcnn

    data = load_image_dataset("digits", seed=0, max_train_samples=300, max_eval_samples=100)
    names = data["train"].features["label"].names
    config = HDCNNConfig(
        num_channels=1, cnn_channels=[8, 16], cnn_convs_per_stage=1, id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
    )  # fmt: skip
    args = TrainingArguments(
        output_dir=str(output_dir), per_device_train_batch_size=50, learning_rate=5e-3, use_cpu=True,
        report_to="none", save_strategy="epoch", eval_strategy="no", disable_tqdm=True, seed=0,
    )  # fmt: skip
    return train_hdcnn(
        config, data["train"].with_format("torch"), args, eval_dataset=data["test"].with_format("torch"),
        heldout_fraction=0.3, block_epochs=2, branch_epochs=1, finetune_epochs=1,
        hierarchy_kwargs={"num_coarse": 3}, resume=resume,
    )  # fmt: skip


def test_recipe_trains_every_stage_and_resumes(tmp_path):
    result = _run(tmp_path)
    hierarchy, model = result.hierarchy, result.model
    assert hierarchy.num_coarse == 3 and model.config.num_coarse == 3
    assert model.config.coarse_members == hierarchy.coarse_members
    assert sorted({j for g in model.config.coarse_members for j in g}) == list(range(10))
    assert hierarchy.member_names()[0][0] in [str(d) for d in range(10)]  # dataset class names come through
    assert set(result.metrics) == {"building_block", "branches", "global"}
    for stage in ("building_block", "branches", "global"):
        assert (tmp_path / stage / "model" / "model.safetensors").is_file()
    # the trained HD-CNN is not the building block in disguise: branch pre-training and fine-tuning changed it
    block_rear = dict(result.building_block.fine[0].named_parameters())
    branch = dict(model.fine[0].named_parameters())
    assert not torch.equal(branch["stages.0.0.weight"], block_rear["stages.0.0.weight"])
    assert np.isfinite(result.metrics["global"]["eval_loss"])

    resumed = _run(tmp_path, resume=True)  # every stage finished: loaded, not retrained
    assert resumed.metrics == {}
    assert resumed.hierarchy.coarse_members == hierarchy.coarse_members
    for key, value in model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
