"""Train a digit classifier on labels of which a fraction is wrong, with a learned learning rate per training row.

The scikit-learn 8x8 digits (offline) get ``--noise_rate`` of their training labels permuted among themselves; the
rates of the flipped rows fall during training, so the rows the model trusts least are the mislabelled ones. At the
end the rates are written next to each row (``<output_dir>/rates.jsonl``) and the least trusted rows printed.

    python examples/instance_lr/train_noisy_labels.py --output_dir /tmp/ilr
    python examples/instance_lr/train_noisy_labels.py --method data_parameters   # the Data Parameters baseline
    python examples/instance_lr/train_noisy_labels.py --method plain             # plain Trainer, for comparison
    torchrun --nproc_per_node 2 examples/instance_lr/train_noisy_labels.py       # 2 CPU processes (gloo)
    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \\
        examples/instance_lr/train_noisy_labels.py                               # the same with accelerate
    python examples/instance_lr/train_noisy_labels.py --resume_from_checkpoint hf_eff_instance_lr/checkpoint-400

(``accelerate launch --cpu --num_processes 2`` silently starts ONE process; the script checks that it got the
number of processes the launcher asked for.) Every rank ends with the same rates; checkpoints carry them
(``instance_lr.safetensors``) and resuming restores them.
"""

import json
import os
import sys
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import HfArgumentParser, Trainer, TrainingArguments

from hf_eff import load_image_dataset
from hf_eff.bench.training import DigitsCNN
from hf_eff.callbacks.instance_lr import (
    DataParametersCallback,
    InstanceLRCallback,
    InstanceLRTrainer,
    add_sample_index,
)


@dataclass
class NoisyLabelArguments:
    method: str = field(default="instance_lr", metadata={"help": "instance_lr, data_parameters or plain"})
    noise_rate: float = field(default=0.4, metadata={"help": "share of training labels permuted among themselves"})
    rate_lr: float = field(default=0.5, metadata={"help": "step size of the rates (log space)"})
    horizon: int = field(default=16, metadata={"help": "optimizer steps each row's hypergradient is averaged over"})
    max_rate: float = field(default=1.0, metadata={"help": "upper bound of a rate (1: rates only go down)"})
    show: int = field(default=10, metadata={"help": "least trusted rows to print"})

    def __post_init__(self):
        if self.method not in ("instance_lr", "data_parameters", "plain"):
            raise ValueError(f"--method must be instance_lr, data_parameters or plain, got {self.method!r}")
        if not 0 <= self.noise_rate < 1:
            raise ValueError(f"--noise_rate must be in [0, 1), got {self.noise_rate}")


def noisy_digits(noise_rate: float, seed: int):
    data = load_image_dataset("digits", seed=seed)
    labels = np.array(data["train"]["label"])
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(len(labels))[: int(round(noise_rate * len(labels)))]
    noisy = labels.copy()
    noisy[chosen] = rng.permutation(labels[chosen])
    train = data["train"].map(
        lambda row, i: {
            "label": int(noisy[i]),
            "true_label": int(labels[i]),
            "is_corrupt": bool(noisy[i] != labels[i]),
        },
        with_indices=True,
    )
    return add_sample_index(train).with_format("torch"), data["test"].with_format("torch")


def main() -> None:
    parser = HfArgumentParser((NoisyLabelArguments, TrainingArguments))
    parser.set_defaults(
        output_dir="hf_eff_instance_lr",
        num_train_epochs=15,
        per_device_train_batch_size=32,
        learning_rate=0.05,
        optim="sgd",
        optim_args="momentum=0.9",
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
        logging_steps=100,
        save_steps=200,
        report_to="none",
        ddp_find_unused_parameters=False,  # every parameter of the CNN gets a gradient: no DDP warning, no graph walk
        use_cpu=not torch.cuda.is_available(),  # otherwise CPU processes do not form one DDP group
    )
    method_args, training_args = parser.parse_args_into_dataclasses()
    expected = int(os.environ.get("WORLD_SIZE", "1"))
    if training_args.world_size != expected:
        raise RuntimeError(f"the launcher started {expected} processes but training sees {training_args.world_size}")

    train, test = noisy_digits(method_args.noise_rate, training_args.seed)
    if method_args.method == "instance_lr":
        callback = InstanceLRCallback(
            rate_lr=method_args.rate_lr,
            horizon=method_args.horizon,
            max_rate=method_args.max_rate,
            corrupt_column="is_corrupt",  # logs instance_lr/mean_corrupt and mean_clean
        )
    elif method_args.method == "data_parameters":
        callback = DataParametersCallback(corrupt_column="is_corrupt")
    else:
        callback = None

    def accuracy(prediction) -> dict[str, float]:
        return {"accuracy": float((np.argmax(prediction.predictions, -1) == prediction.label_ids).mean())}

    common = {
        "model": DigitsCNN(),
        "args": training_args,
        "eval_dataset": test,
        "compute_metrics": accuracy,
    }
    if callback is None:
        trainer = Trainer(**common, train_dataset=train.remove_columns("sample_idx"))
    else:
        trainer = InstanceLRTrainer(**common, train_dataset=train, callbacks=[callback])
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    metrics = trainer.evaluate()

    if trainer.is_world_process_zero():
        print(
            f"test accuracy: {metrics['eval_accuracy']:.4f} ({method_args.method}, {method_args.noise_rate:.0%} noise)"
        )
        if callback is not None:
            report(trainer.per_sample_callback, train, training_args.output_dir, method_args.show)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    sys.stdout.flush()
    os._exit(0)  # gloo processes may abort at interpreter exit under torch 2.13 (HF_CONVENTIONS pitfall 7)


def report(callback, train, output_dir: str, show: int) -> None:
    """Mean value of flipped vs clean rows, the AUROC of telling them apart, the least trusted rows."""
    from sklearn.metrics import roc_auc_score

    rows = callback.add_values_column(train.with_format(None), "value")
    values = np.array(rows["value"])
    corrupt = np.array(rows["is_corrupt"])
    trust = values if isinstance(callback, InstanceLRCallback) else -values  # a high temperature = less trust
    name = "rate" if isinstance(callback, InstanceLRCallback) else "temperature"
    print(f"mean {name}: flipped rows {values[corrupt].mean():.3f}, clean rows {values[~corrupt].mean():.3f}")
    if corrupt.any() and (~corrupt).any():
        print(f"AUROC of the {name} at finding flipped labels: {roc_auc_score(~corrupt, trust):.3f}")
    print(f"least trusted rows (sample_idx, {name}, given label, true label):")
    for i in np.argsort(trust)[:show]:
        print(
            f"  {rows[int(i)]['sample_idx']:5d}  {values[i]:.4f}  {rows[int(i)]['label']}  {rows[int(i)]['true_label']}"
        )
    with open(os.path.join(output_dir, "rates.jsonl"), "w") as file:
        for row in rows.remove_columns("pixel_values"):
            file.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
