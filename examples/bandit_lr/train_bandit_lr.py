"""Train a small classifier on the scikit-learn 8x8 digits while hot swapping picks the learning rate.

The default selector races the grid's rates from a shared snapshot at the start, exploits the winner and races its
neighbours near the end (``--bandit ducb --backtrack`` is the paper's D-UCB bandit). Runs offline on CPU in seconds,
and the same way under several processes; every TrainingArguments flag works:

    python examples/bandit_lr/train_bandit_lr.py --output_dir hf_eff_bandit_lr
    python examples/bandit_lr/train_bandit_lr.py --output_dir run --bandit ducb --backtrack --episode_steps 20
    python examples/bandit_lr/train_bandit_lr.py --output_dir run --keep_steps  # 600 steps kept, races on top
    torchrun --nproc_per_node 2 examples/bandit_lr/train_bandit_lr.py --output_dir run --expected_world_size 2
    python examples/bandit_lr/train_bandit_lr.py --output_dir run --resume_from_checkpoint run/checkpoint-200

Checkpoints keep the selector (plan, race, statistics, snapshots): resuming continues the same arm sequence, because
``restore_callback_states_from_checkpoint`` is on by default here.
"""

import json
import os
import sys
from dataclasses import dataclass, field

import torch
from transformers import HfArgumentParser, TrainingArguments

from hf_eff.bench.training import DigitsMLP, load_digits_splits
from hf_eff.callbacks.bandit_lr import BanditLRCallback, BanditLRTrainer
from hf_eff.distributed import world_size_problem


@dataclass
class BanditScriptArguments:
    """The selector's settings; everything else is a TrainingArguments flag."""

    arms: list[float] = field(
        default_factory=lambda: [0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0],
        metadata={"help": "learning rates (or multipliers with --mode multiplier) to choose from"},
    )
    bandit: str = field(
        default="race", metadata={"help": "race (default), ducb, swucb, ucb1, epsilon_greedy, thompson"}
    )
    episode_steps: int | None = field(default=None, metadata={"help": "None: derived from max_steps"})
    mode: str = field(default="absolute", metadata={"help": "'absolute' or 'multiplier'"})
    reward: str = field(default="probe_loss", metadata={"help": "'probe_loss' or 'train_loss' (bandits only)"})
    backtrack: bool = field(default=False, metadata={"help": "undo episodes that made the objective worse"})
    keep_steps: bool = field(
        default=False,
        metadata={
            "help": "train --max_steps steps of kept trajectory, like a fixed-rate run: the run's max_steps becomes "
            "the selector's max_steps_for(max_steps), exploration paid on top (racing and bandits without backtrack)"
        },
    )
    probe_size: int = field(default=256, metadata={"help": "held-out training examples used as probe set"})
    expected_world_size: int | None = field(default=None, metadata={"help": "fail unless this many processes run"})


def main(argv: list[str] | None = None) -> None:
    parser = HfArgumentParser((BanditScriptArguments, TrainingArguments))
    defaults = [
        "--max_steps", "600", "--per_device_train_batch_size", "32", "--optim", "sgd", "--learning_rate", "1.0",
        "--lr_scheduler_type", "constant", "--logging_steps", "50", "--save_strategy", "steps", "--save_steps", "200",
        "--report_to", "none", "--restore_callback_states_from_checkpoint", "true",
    ]  # fmt: skip
    if not torch.cuda.is_available():
        defaults += ["--use_cpu", "true"]  # joins torchrun / accelerate processes into one gloo group on CPU
    argv = list(sys.argv[1:] if argv is None else argv)
    script_args, training_args = parser.parse_args_into_dataclasses(defaults + argv)  # the command line wins
    if problem := world_size_problem(training_args.world_size, script_args.expected_world_size):
        raise SystemExit(problem)

    splits = load_digits_splits(training_args.seed, probe_size=script_args.probe_size)  # probe held out of training
    bandit = BanditLRCallback(
        script_args.arms,
        episode_steps=script_args.episode_steps,
        mode=script_args.mode,
        bandit=script_args.bandit,
        reward=script_args.reward,
        probe_dataset=splits["probe"] if script_args.reward == "probe_loss" else None,
        backtrack=script_args.backtrack,
        seed=training_args.seed,
    )
    if script_args.keep_steps:  # the races' discarded branches come on top of the steps asked for
        training_args.max_steps = bandit.max_steps_for(training_args.max_steps)
    torch.manual_seed(training_args.seed)
    # BanditLRTrainer = Trainer + the selector's episode metrics in every report_to integration
    trainer = BanditLRTrainer(model=DigitsMLP(), args=training_args, train_dataset=splits["train"], callbacks=[bandit])
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)

    # the callback instance may have been replaced when its state was restored from a checkpoint
    bandit = next(cb for cb in trainer.callback_handler.callbacks if isinstance(cb, BanditLRCallback))
    if trainer.is_world_process_zero():
        from hf_eff.bench.training import evaluate

        metrics = evaluate(trainer.model, splits["test"])
        print("final metrics:", json.dumps({"eval_loss": metrics["loss"], "eval_accuracy": metrics["accuracy"]}))
        print(f"arms played per episode: {bandit.arm_trace}")
        print(
            f"episodes backtracked: {sum(record['backtracked'] for record in bandit.history)} of {len(bandit.history)}"
        )
        print(f"rate at the end: {bandit.current_lr}")
        print(f"kept steps: {bandit.kept_steps} of {trainer.state.global_step}")
    sys.stdout.flush()
    if training_args.world_size > 1:
        os._exit(0)  # leave without the gloo teardown abort seen with torch 2.13 on CPU


if __name__ == "__main__":
    main()
