import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from spdf_testing import tiny_gpt2
from transformers import AutoModelForCausalLM, TrainingArguments

from hf_eff import DenseFinetuneTrainer, SparsePretrainer, SparsityConfig
from hf_eff.sparsity.checkpointing import MASKS_FILENAME, load_masks


def _args(output_dir, **overrides):
    values = {
        "output_dir": str(output_dir),
        "max_steps": 6,
        "per_device_train_batch_size": 8,
        "learning_rate": 1e-2,
        "weight_decay": 0.1,
        "max_grad_norm": 1.0,
        "use_cpu": True,
        "report_to": "none",
        "logging_steps": 3,
        "save_strategy": "no",
        "disable_tqdm": True,
        "seed": 0,
    }
    values.update(overrides)
    return TrainingArguments(**values)


def _zeros_held(model, masks):
    params = dict(model.named_parameters())
    return all(torch.count_nonzero(params[n][~m]) == 0 for n, m in masks.items())


def test_sparse_pretraining_holds_masks_and_logs_flops(tmp_path, lm_dataset):
    trainer = SparsePretrainer(
        model=tiny_gpt2(),
        args=_args(tmp_path, optim="sgd", adam_beta1=0.9),
        train_dataset=lm_dataset,
        sparsity_config=SparsityConfig(0.75),
    )
    trainer.train()
    manager = trainer.mask_manager
    assert manager.leaked() == 0
    assert manager.held_sparsity() == pytest.approx(0.75)
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logs and all(entry["sparsity"] == pytest.approx(0.75) for entry in logs)
    assert logs[-1]["train_flops_saved"] > logs[0]["train_flops_saved"] > 0
    assert trainer.tokens_seen == 6 * 8 * 16
    # 75% of 24 d^2 L FLOPs saved, head and attention dense: reduction strictly between 1 and 4
    assert 1.0 < logs[-1]["train_flops_reduction"] < 4.0


def test_save_model_writes_plain_checkpoint_with_masks_beside(tmp_path, lm_dataset):
    trainer = SparsePretrainer(
        model=tiny_gpt2(), args=_args(tmp_path), train_dataset=lm_dataset, sparsity_config=SparsityConfig(0.5)
    )
    trainer.train()
    trainer.save_model(tmp_path / "out")
    weights = load_file(tmp_path / "out" / "model.safetensors")
    assert not any("mask" in key for key in weights)
    masks, config, tokens = load_masks(tmp_path / "out")
    assert config == SparsityConfig(0.5) and tokens == trainer.tokens_seen
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert _zeros_held(reloaded, masks)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "library_name: hf_eff" in card and "50.0%" in card and MASKS_FILENAME in card


def test_resume_restores_masks_without_redrawing(tmp_path, lm_dataset):
    args = _args(tmp_path, save_strategy="steps", save_steps=3, max_steps=6)
    first = SparsePretrainer(
        model=tiny_gpt2(), args=args, train_dataset=lm_dataset, sparsity_config=SparsityConfig(0.75, seed=1)
    )
    first.train()
    saved = load_masks(tmp_path / "checkpoint-3")[0]
    assert all(torch.equal(saved[n], first.mask_manager.masks[n]) for n in saved)

    # a new trainer whose own draw differs (other seed): resuming must bring back the checkpoint's masks
    resumed = SparsePretrainer(
        model=tiny_gpt2(seed=5), args=args, train_dataset=lm_dataset, sparsity_config=SparsityConfig(0.75, seed=2)
    )
    assert not all(torch.equal(saved[n], resumed.mask_manager.masks[n]) for n in saved)
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-3"))
    assert all(torch.equal(saved[n], resumed.mask_manager.masks[n]) for n in saved)
    assert resumed.sparsity_config.seed == 1
    assert resumed.mask_manager.leaked() == 0 and _zeros_held(resumed.model, saved)
    assert resumed.tokens_seen == first.tokens_seen  # FLOP accounting continues from the checkpoint
    # same masks + same data order + restored optimizer: the resumed run ends where the uninterrupted one did
    for name, param in first.model.named_parameters():
        torch.testing.assert_close(param, dict(resumed.model.named_parameters())[name], rtol=1e-4, atol=1e-5)


def test_resume_from_a_checkpoint_without_masks_is_refused(tmp_path, lm_dataset):
    args = _args(tmp_path, save_strategy="steps", save_steps=3, max_steps=3)
    SparsePretrainer(model=tiny_gpt2(), args=args, train_dataset=lm_dataset).train()
    os.remove(tmp_path / "checkpoint-3" / MASKS_FILENAME)
    trainer = SparsePretrainer(model=tiny_gpt2(), args=_args(tmp_path, max_steps=6), train_dataset=lm_dataset)
    with pytest.raises(ValueError, match="no sparsity_masks"):
        trainer.train(resume_from_checkpoint=str(tmp_path / "checkpoint-3"))


def test_dense_finetuning_revives_masked_weights(tmp_path, lm_dataset):
    pre = SparsePretrainer(
        model=tiny_gpt2(), args=_args(tmp_path / "pre"), train_dataset=lm_dataset, sparsity_config=SparsityConfig(0.75)
    )
    pre.train()
    pre.save_model(tmp_path / "sparse")
    masks = load_masks(tmp_path / "sparse")[0]

    fine = DenseFinetuneTrainer(
        model=str(tmp_path / "sparse"),
        args=_args(tmp_path / "ft", max_steps=3, warmup_steps=1, learning_rate=1e-3),
        train_dataset=lm_dataset,
    )
    assert fine.revived_fraction() == 0.0
    fine.train()
    assert fine.revived_fraction() > 0.9
    assert fine.optimizer is not pre.optimizer
    params = dict(fine.model.named_parameters())
    assert all(torch.count_nonzero(params[n][~m]) > 0 for n, m in masks.items())
    assert any("revived_fraction" in entry for entry in fine.state.log_history)
    fine.save_model(tmp_path / "dense")
    assert not (tmp_path / "dense" / MASKS_FILENAME).exists()
    assert not any("mask" in key for key in load_file(tmp_path / "dense" / "model.safetensors"))
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "dense")
    torch.testing.assert_close(reloaded.transformer.h[0].mlp.c_fc.weight, fine.model.transformer.h[0].mlp.c_fc.weight)


def test_dense_finetune_detaches_a_live_sparse_trainer(tmp_path, lm_dataset):
    pre = SparsePretrainer(model=tiny_gpt2(), args=_args(tmp_path / "pre", max_steps=2), train_dataset=lm_dataset)
    pre.train()
    fine = DenseFinetuneTrainer(model=pre.model, args=_args(tmp_path / "ft", max_steps=2), train_dataset=lm_dataset)
    assert pre.mask_manager._grad_hooks == [] and pre.mask_manager._optimizer_hooks == {}
    fine.train()
    assert fine.revived_fraction() > 0.5


def test_lora_finetuning_keeps_the_sparse_base_frozen_and_sparse(tmp_path, lm_dataset):
    from peft import LoraConfig

    pre = SparsePretrainer(model=tiny_gpt2(), args=_args(tmp_path / "pre", max_steps=2), train_dataset=lm_dataset)
    pre.train()
    pre.save_model(tmp_path / "sparse")
    lora = LoraConfig(r=4, target_modules=["c_attn", "c_fc"], fan_in_fan_out=True, task_type="CAUSAL_LM")
    fine = DenseFinetuneTrainer(
        model=str(tmp_path / "sparse"),
        args=_args(tmp_path / "ft", max_steps=3),
        train_dataset=lm_dataset,
        peft_config=lora,
    )
    fine.train()
    assert fine.revived_fraction() == 0.0
    lora_weights = [p for n, p in fine.model.named_parameters() if "lora_B" in n]
    assert lora_weights and any(torch.count_nonzero(p) > 0 for p in lora_weights)  # adapters did train


def test_trainer_argument_errors(tmp_path, lm_dataset):
    with pytest.raises(TypeError, match="sparsity_config"):
        SparsePretrainer(model=tiny_gpt2(), args=_args(tmp_path), sparsity_config={"sparsity": 0.5})
    with pytest.raises(ValueError, match="model="):
        SparsePretrainer(args=_args(tmp_path))
    with pytest.raises(TypeError, match="PreTrainedModel"):
        DenseFinetuneTrainer(model=torch.nn.Linear(2, 2), args=_args(tmp_path))


def test_model_save_pretrained_carries_the_masks_and_densify_finds_them(tmp_path, lm_dataset):
    trainer = SparsePretrainer(
        model=tiny_gpt2(),
        args=_args(tmp_path, max_steps=2),
        train_dataset=lm_dataset,
        sparsity_config=SparsityConfig(0.5),
    )
    trainer.train()
    trainer.model.save_pretrained(tmp_path / "plain")  # the usual save, not the trainer's
    masks, config, tokens = load_masks(tmp_path / "plain")
    assert config == SparsityConfig(0.5) and tokens == trainer.tokens_seen == 2 * 8 * 16
    assert all(torch.equal(masks[n], trainer.mask_manager.masks[n]) for n in masks)
    # from_pretrained + DenseFinetuneTrainer: the masks are found next to the weights the model came from
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "plain")
    assert _zeros_held(model, masks)
    fine = DenseFinetuneTrainer(model=model, args=_args(tmp_path / "ft", max_steps=2), train_dataset=lm_dataset)
    assert fine.revived_fraction() == 0.0
    fine.train()
    assert fine.revived_fraction() > 0.5
    # after the sparse-to-dense switch the model saves without masks again
    trainer.densify().save_pretrained(tmp_path / "dense")
    assert not (tmp_path / "dense" / MASKS_FILENAME).exists()


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_deepspeed_is_refused_at_train_start(tmp_path, lm_dataset, stage):
    """DeepSpeed steps its own flat fp32 copies, bypassing the hooks; it is detected from the trainer's arguments and
    accelerator state, without importing deepspeed (not installed here)."""
    trainer = SparsePretrainer(model=tiny_gpt2(), args=_args(tmp_path), train_dataset=lm_dataset)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    # what TrainingArguments(deepspeed=...) and accelerate set up when deepspeed is installed
    object.__setattr__(trainer.args, "deepspeed", {"zero_optimization": {"stage": stage}})
    with pytest.raises(ValueError, match=rf"DeepSpeed \(ZeRO stage {stage}\) is not supported.*FSDP2"):
        trainer.train()
    assert all(torch.equal(p, before[n]) for n, p in trainer.model.named_parameters())  # nothing trained
    object.__setattr__(trainer.args, "deepspeed", None)
    trainer.is_deepspeed_enabled = True  # what Trainer reads from accelerate's state (e.g. `accelerate launch` + DS)
    with pytest.raises(ValueError, match=r"DeepSpeed \(ZeRO stage \?\)"):
        trainer.train()


def test_adafactor_keeps_the_masks(tmp_path, lm_dataset):
    """transformers' Adafactor (factored second moments, first moment on), given by the user: the hooks still go on."""
    from transformers.optimization import Adafactor

    model = tiny_gpt2()
    optimizer = Adafactor(
        model.parameters(), lr=1e-2, beta1=0.9, weight_decay=0.1, relative_step=False, scale_parameter=False
    )
    trainer = SparsePretrainer(
        model=model,
        args=_args(tmp_path),
        train_dataset=lm_dataset,
        sparsity_config=SparsityConfig(0.75),
        optimizers=(optimizer, None),
    )
    trainer.train()
    manager = trainer.mask_manager
    assert manager.leaked() == 0 and manager.held_sparsity() == pytest.approx(0.75)
    for name, param in manager.params.items():
        assert torch.count_nonzero(optimizer.state[param]["exp_avg"][~manager.masks[name]]) == 0


def test_model_push_to_hub_uploads_the_masks(tmp_path, lm_dataset, monkeypatch):
    """``model.push_to_hub`` (not the trainer's) saves through the hooked ``save_pretrained``; the Hub is a capture."""
    from types import SimpleNamespace

    import huggingface_hub
    from huggingface_hub import CommitOperationAdd, HfApi
    from safetensors.torch import load

    uploaded = {}

    def create_commit(self, repo_id, operations, **kwargs):
        for op in operations:
            assert isinstance(op, CommitOperationAdd)
            source = op.path_or_fileobj
            uploaded[op.path_in_repo] = Path(source).read_bytes() if isinstance(source, (str, Path)) else source
        return SimpleNamespace(commit_url="https://hub.invalid/x", oid="0" * 40, pr_url=None)

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kwargs: SimpleNamespace(repo_id=repo_id))
    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    trainer = SparsePretrainer(model=tiny_gpt2(), args=_args(tmp_path, max_steps=1), train_dataset=lm_dataset)
    trainer.train()
    trainer.model.push_to_hub("someone/sparse-gpt")
    assert "model.safetensors" in uploaded and MASKS_FILENAME in uploaded
    masks = load(uploaded[MASKS_FILENAME])
    assert all(torch.equal(masks[n].bool(), trainer.mask_manager.masks[n]) for n in trainer.mask_manager.masks)


def test_fsdp1_is_refused_at_train_start(tmp_path, lm_dataset):
    from types import SimpleNamespace

    trainer = SparsePretrainer(model=tiny_gpt2(), args=_args(tmp_path), train_dataset=lm_dataset)
    trainer.is_fsdp_enabled = True
    trainer.accelerator.state.fsdp_plugin = SimpleNamespace(fsdp_version=1)
    try:
        with pytest.raises(ValueError, match="FSDP1 is not supported.*fsdp_version': 2"):
            trainer.train()
    finally:
        trainer.accelerator.state.fsdp_plugin = None  # the state is shared by every Accelerator of this process
