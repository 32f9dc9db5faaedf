import pytest
import torch


def _train_on_rank(output_dir: str, seed_per_rank: bool):
    import torch.distributed as dist
    from spdf_testing import random_lm_dataset, tiny_gpt2
    from transformers import TrainingArguments

    from hf_eff import SparsePretrainer, SparsityConfig

    rank = dist.get_rank()
    torch.manual_seed(100 + rank)  # global RNG differs per rank; masks must not depend on it
    args = TrainingArguments(
        output_dir=output_dir,
        max_steps=3,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        weight_decay=0.1,
        max_grad_norm=1.0,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
    )
    config = SparsityConfig(0.75, seed=rank if seed_per_rank else 0)
    trainer = SparsePretrainer(
        model=tiny_gpt2(), args=args, train_dataset=random_lm_dataset(32), sparsity_config=config
    )
    trainer.train()
    assert trainer.args.world_size == 2
    params = dict(trainer.model.named_parameters())
    return {
        "masks": trainer.mask_manager.state_dict(),
        "weights": {n: params[n].detach().clone() for n in trainer.mask_manager.masks},
        "leaked": trainer.mask_manager.leaked(),
        "tokens": trainer.tokens_seen,
    }


@pytest.mark.multiprocess
@pytest.mark.parametrize("seed_per_rank", [False, True], ids=["shared-seed", "rank0-broadcast"])
def test_masks_identical_across_two_processes(tmp_path, seed_per_rank):
    from hf_eff.testing import run_distributed

    rank0, rank1 = run_distributed(_train_on_rank, str(tmp_path), seed_per_rank, world_size=2)
    assert rank0["masks"].keys() == rank1["masks"].keys()
    for name in rank0["masks"]:
        assert torch.equal(rank0["masks"][name], rank1["masks"][name])
        torch.testing.assert_close(rank0["weights"][name], rank1["weights"][name])  # DDP kept replicas in step
    assert rank0["leaked"] == rank1["leaked"] == 0
    assert rank0["tokens"] == 3 * 4 * 16 * 2  # counted over both ranks
