"""Training recipes for the crash-resume tests: each builds a ready-to-train ``Trainer`` for a tiny GPT-2 (made
from a config, with its default dropout, so that the generator state matters) in ``output_dir``.

The harness (:mod:`hf_eff.testing.resume`) loads this file by path in fresh processes, so it imports nothing from
the test folders. Options are JSON keyword arguments.
"""

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainerCallback, TrainingArguments

from hf_eff.callbacks.bandit_lr import BanditLRCallback, BanditLRTrainer
from hf_eff.sparsity import SparsePretrainer, SparsityConfig


VOCAB, SEQ = 48, 16


def tiny_gpt2() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=VOCAB, n_positions=SEQ))


def lm_examples(rows: int, seed: int) -> list[dict[str, torch.Tensor]]:
    ids = torch.randint(0, VOCAB, (rows, SEQ), generator=torch.Generator().manual_seed(seed))
    return [{"input_ids": row, "labels": row} for row in ids]


def training_args(output_dir: str, **overrides) -> TrainingArguments:
    settings = {
        "output_dir": output_dir,
        "max_steps": 20,
        "per_device_train_batch_size": 4,
        "learning_rate": 0.05,
        "lr_scheduler_type": "constant",
        "optim": "sgd",
        "save_strategy": "steps",
        "save_steps": 6,
        "logging_steps": 100,
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": True,
        "seed": 0,
        "restore_callback_states_from_checkpoint": True,
    }
    return TrainingArguments(**{**settings, **overrides})


def bandit_lr(
    output_dir: str,
    *,
    mode: str = "absolute",
    backtrack: bool = False,
    trainer: str = "plain",
    bandit: str = "epsilon_greedy",
    **overrides,
) -> Trainer:
    """Hot swapping with 4-step episodes; the 3.0 arm (absolute) / 40x multiplier makes some episodes worse, so
    that backtracking runs. ``bandit="race"``: the racing selector, whose opening race spans steps 1-12 (a
    checkpoint at step 6 holds its snapshot and its best branch so far)."""
    arms = [0.02, 0.2, 3.0] if mode == "absolute" else [0.4, 4.0, 60.0]
    bandit = BanditLRCallback(
        arms,
        episode_steps=4,
        mode=mode,
        probe_dataset=lm_examples(8, seed=1),
        probe_batch_size=4,
        backtrack=backtrack,
        bandit=bandit,
        bandit_kwargs={"epsilon": 0.5} if bandit == "epsilon_greedy" else {},
        seed=3,
    )
    if mode == "multiplier":
        overrides.setdefault("lr_scheduler_type", "linear")
    trainer_class = BanditLRTrainer if trainer == "mixin" else Trainer
    return trainer_class(
        model=tiny_gpt2(),
        args=training_args(output_dir, **overrides),
        train_dataset=lm_examples(64, seed=0),
        callbacks=[bandit],
    )


def spdf(output_dir: str, **overrides) -> tuple[Trainer, object]:
    """SPDF at 75% sparsity with AdamW; the masks and the token count are the state it adds."""
    overrides = {"optim": "adamw_torch", "learning_rate": 1e-2, **overrides}
    trainer = SparsePretrainer(
        model=tiny_gpt2(),
        args=training_args(output_dir, **overrides),
        train_dataset=lm_examples(64, seed=0),
        sparsity_config=SparsityConfig(0.75, seed=0),
    )
    return trainer, spdf_state


def spdf_state(trainer: SparsePretrainer) -> dict:
    return {"masks": trainer.mask_manager.state_dict(), "tokens_seen": trainer.tokens_seen}


class ForgetfulLRCallback(TrainerCallback):
    """Cycles the learning rate with a step counter it never checkpoints: a resume it does not survive."""

    def __init__(self):
        self.steps = 0

    def on_step_begin(self, args, state, control, optimizer=None, **kwargs):
        for group in optimizer.param_groups:
            group["lr"] = 0.05 * (1 + self.steps % 3)
        self.steps += 1


def forgetful(output_dir: str, **overrides) -> Trainer:
    return Trainer(
        model=tiny_gpt2(),
        args=training_args(output_dir, **overrides),
        train_dataset=lm_examples(64, seed=0),
        callbacks=[ForgetfulLRCallback()],
    )
