"""SPDF under FSDP2 with 2 CPU processes (gloo): masks sharded like their parameters, enforced on local shards,
saved beside sharded checkpoints, restored on resume, and written with the consolidated final checkpoint."""

import pytest
import torch
import torch.distributed.fsdp  # noqa: F401  (imported once here, not in every forked rank)
import transformers.trainer  # noqa: F401
from transformers import GPT2Config, GPT2LMHeadModel

from hf_eff.sparsity import SparsityConfig
from hf_eff.testing import run_distributed


# n_embd=15 makes every sharded dimension odd: rank 0 holds 8 rows, rank 1 holds 7 (uneven shards)
TINY = {"n_layer": 2, "n_embd": 15, "n_head": 3, "vocab_size": 48, "n_positions": 16}
CONFIG = SparsityConfig(0.75, seed=3)


def _model():
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(**TINY))


def _shard_report(manager, optimizer) -> dict:
    """What every rank holds locally: shard shapes, and nonzeros at masked entries of weights and optimizer state."""
    from hf_eff.sparsity.masks import local_shard

    report = {"leaked": manager.leaked(), "held": manager.held_sparsity(), "masks": manager.state_dict(), "shards": {}}
    for name, param in manager.params.items():
        dropped = local_shard(manager._dropped[name])
        states = [v for v in optimizer.state[param].values() if torch.is_tensor(v) and v.shape == param.shape]
        report["shards"][name] = {
            "type": type(param).__name__,
            "local_shape": tuple(local_shard(param).shape),
            "dead_weights": int(torch.count_nonzero(local_shard(param)[dropped])),
            "dead_state": sum(int(torch.count_nonzero(local_shard(s)[dropped])) for s in states),
            "states": len(states),
            "live_weights": int(torch.count_nonzero(local_shard(param)[~dropped])),
        }
    return report


def _fully_shard_loop(optimizer_name: str) -> dict:
    """The mask manager on a model sharded with ``fully_shard`` directly (no Trainer)."""
    import torch.distributed as dist
    from torch.distributed.fsdp import fully_shard

    from hf_eff.sparsity import StaticMaskManager

    model = _model()
    for block in model.transformer.h:
        fully_shard(block)
    fully_shard(model)
    manager = StaticMaskManager.from_model(model, CONFIG)  # drawn for the global shapes, sharded like the params
    if optimizer_name == "adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    else:  # L2 decay inside the gradient, added after the gradient hooks: only the post-step re-masking catches it
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=0.1)
    manager.attach_optimizer(optimizer)
    generator = torch.Generator().manual_seed(dist.get_rank())
    for _ in range(3):
        batch = torch.randint(0, TINY["vocab_size"], (4, 16), generator=generator)
        model(input_ids=batch, labels=batch).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
    return _shard_report(manager, optimizer)


def _check_every_shard(results: list[dict]) -> None:
    from hf_eff.sparsity.masks import draw_masks
    from hf_eff.sparsity.targets import select_targets

    expected = draw_masks({n: p.shape for n, p in select_targets(_model(), None).items()}, CONFIG)  # 1 process
    num_masked = sum(int((~m).sum()) for m in expected.values())
    num_weights = sum(m.numel() for m in expected.values())
    for rank, result in enumerate(results):
        assert result["masks"].keys() == expected.keys()
        assert all(torch.equal(result["masks"][n], expected[n]) for n in expected), f"rank {rank}"
        assert result["leaked"] == 0
        assert result["held"] == pytest.approx(num_masked / num_weights, abs=1e-12)  # exactly the drawn count
        for name, shard in result["shards"].items():
            assert shard["type"] == "DTensor", name
            assert shard["dead_weights"] == 0 and shard["dead_state"] == 0, (rank, name, shard)
            assert shard["states"] == 2 and shard["live_weights"] > 0
    # uneven shards: 15 rows cut into 8 + 7
    shapes = {rank: results[rank]["shards"]["transformer.h.0.attn.c_attn.weight"]["local_shape"] for rank in (0, 1)}
    assert shapes == {0: (8, 45), 1: (7, 45)}


@pytest.mark.multiprocess
@pytest.mark.parametrize("optimizer_name", ["adamw", "adam-l2"])
def test_masks_hold_on_every_shard_under_fully_shard(optimizer_name):
    _check_every_shard(run_distributed(_fully_shard_loop, optimizer_name, world_size=2))


def _fsdp_trainer(output_dir: str, sparsity_config: SparsityConfig, model_seed: int = 0):
    from spdf_testing import force_fsdp2_on_cpu, random_lm_dataset
    from transformers import TrainingArguments

    from hf_eff import SparsePretrainer

    args = TrainingArguments(
        output_dir=output_dir,
        max_steps=4,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        weight_decay=0.1,
        max_grad_norm=1.0,
        use_cpu=True,
        save_strategy="steps",
        save_steps=2,
        logging_steps=2,
        report_to="none",
        disable_tqdm=True,
        seed=0,
        fsdp=True,
        fsdp_config={
            "fsdp_version": 2,
            "state_dict_type": "SHARDED_STATE_DICT",
            "transformer_layer_cls_to_wrap": ["GPT2Block"],
            "reshard_after_forward": True,
        },
    )
    torch.manual_seed(model_seed)
    trainer = SparsePretrainer(
        model=GPT2LMHeadModel(GPT2Config(**TINY)),
        args=args,
        train_dataset=random_lm_dataset(64, seed=1).map(lambda row: {"input_ids": [i % 48 for i in row["input_ids"]]}),
        sparsity_config=sparsity_config,
    )
    force_fsdp2_on_cpu(trainer)
    return trainer


def _train_save_resume(output_dir: str) -> dict:
    """Train 4 steps with sharded checkpoints, save a consolidated model, then resume a new trainer from step 2."""
    import os

    from hf_eff.callbacks._utils import unwrap_optimizer

    trainer = _fsdp_trainer(output_dir, CONFIG)
    trainer.train()
    optimizer = unwrap_optimizer(trainer.optimizer)
    first = _shard_report(trainer.mask_manager, optimizer)
    first["hooked_optimizer"] = id(optimizer) in trainer.mask_manager._optimizer_hooks
    first["logged_sparsity"] = [e["sparsity"] for e in trainer.state.log_history if "sparsity" in e]
    first["checkpoint"] = sorted(os.listdir(os.path.join(output_dir, "checkpoint-2")))
    trainer.save_model(os.path.join(output_dir, "final"))  # consolidated by SparsePretrainer.save_model
    final_weights = {n: p.full_tensor().detach().clone() for n, p in trainer.mask_manager.params.items()}

    # a new trainer whose own masks differ (other seed, other init) resumes from the sharded checkpoint
    resumed = _fsdp_trainer(output_dir, SparsityConfig(0.75, seed=9), model_seed=5)
    redrawn = resumed.mask_manager.state_dict()
    resumed.train(resume_from_checkpoint=os.path.join(output_dir, "checkpoint-2"))
    second = _shard_report(resumed.mask_manager, unwrap_optimizer(resumed.optimizer))
    second["redrawn_differs"] = any(
        not torch.equal(redrawn[n], CONFIG_MASKS) for n, CONFIG_MASKS in first["masks"].items()
    )
    second["tokens"] = resumed.tokens_seen
    second["max_weight_diff"] = max(
        float((p.full_tensor() - final_weights[n]).abs().max()) for n, p in resumed.mask_manager.params.items()
    )
    return {"first": first, "resumed": second, "tokens": trainer.tokens_seen}


@pytest.mark.multiprocess
def test_sparse_pretrainer_under_fsdp2_checkpoints_and_resumes(tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from hf_eff.sparsity.checkpointing import MASKS_FILENAME, load_masks

    results = run_distributed(_train_save_resume, str(tmp_path), world_size=2)
    _check_every_shard([r["first"] for r in results])
    _check_every_shard([r["resumed"] for r in results])  # resumed masks: the checkpoint's, not the new draw
    for result in results:
        assert result["first"]["hooked_optimizer"]
        assert result["first"]["logged_sparsity"] and all(
            s == result["first"]["held"] for s in result["first"]["logged_sparsity"]
        )
        assert result["resumed"]["redrawn_differs"]
        assert result["resumed"]["tokens"] == result["tokens"] == 4 * 4 * 16 * 2
        # same masks, data order and restored optimizer: the resumed run ends where the uninterrupted one did
        assert result["resumed"]["max_weight_diff"] < 1e-5
    # the checkpoint is sharded (DCP folders), with the global masks beside it
    checkpoint = results[0]["first"]["checkpoint"]
    assert (
        MASKS_FILENAME in checkpoint and "pytorch_model_fsdp_0" in checkpoint and "model.safetensors" not in checkpoint
    )
    # the final save is consolidated: dense-format weights with zeros in place, masks beside, plain from_pretrained
    final = tmp_path / "final"
    masks, config, tokens = load_masks(final)
    assert config == CONFIG and tokens == results[0]["tokens"]
    assert all(torch.equal(masks[n], results[0]["first"]["masks"][n]) for n in masks)
    assert not any("mask" in key for key in load_file(final / "model.safetensors"))
    reloaded = dict(AutoModelForCausalLM.from_pretrained(final).named_parameters())
    assert all(
        torch.count_nonzero(reloaded[n][~m]) == 0 and torch.count_nonzero(reloaded[n][m]) > 0 for n, m in masks.items()
    )
