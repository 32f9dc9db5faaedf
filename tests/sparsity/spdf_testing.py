"""Tiny GPT-2 models and random LM data for the SPDF tests (a uniquely named module: every test folder's
conftest.py is imported as ``conftest``, so tests must not import helpers from it)."""

import torch
from datasets import Dataset


VOCAB = 48
SEQ = 16


def tiny_gpt2(seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=VOCAB, n_positions=SEQ))


def random_lm_dataset(rows: int = 64, seed: int = 0) -> Dataset:
    ids = torch.randint(0, VOCAB, (rows, SEQ), generator=torch.Generator().manual_seed(seed))
    return Dataset.from_dict({"input_ids": ids.tolist(), "labels": ids.tolist()})


def force_fsdp2_on_cpu(trainer) -> None:
    """Put ``trainer`` on accelerate's FSDP2 path on a CPU-only machine.

    accelerate enables FSDP only for accelerator devices: with ``use_cpu=True`` it silently falls back to DDP
    (``MULTI_CPU``), although ``fully_shard`` itself runs on CPU with gloo. This switches the accelerator state to
    the FSDP2 plugin that the trainer's own ``TrainingArguments`` describe; from there on the run takes Trainer's and
    accelerate's real FSDP2 code paths (``fully_shard``, DCP sharded checkpoints, full-state-dict gathering).
    """
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    state = trainer.accelerator.state
    state.fsdp_plugin = FullyShardedDataParallelPlugin(**trainer.args.fsdp_plugin_args)
    state.distributed_type = DistributedType.FSDP
    trainer.is_fsdp_enabled = True
