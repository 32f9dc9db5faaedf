"""The shared training run of the training-method benchmarks: what it trains, with what, and what it reports."""

import pytest
import torch
from transformers import Trainer, TrainerCallback

from hf_eff.bench.registry import available_benchmarks
from hf_eff.bench.training import DigitsMLP, InMemoryExamples, evaluate, load_digits_splits, train_once


@pytest.fixture(scope="module")
def splits():
    return load_digits_splits(seed=0, probe_size=64)


class CountSteps(TrainerCallback):
    def __init__(self):
        self.steps, self.learning_rates = 0, []

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        self.steps += 1
        self.learning_rates.append(optimizer.param_groups[0]["lr"])


class TaggedTrainer(Trainer):
    pass


def test_splits_hold_the_probe_set_out_of_training(splits):
    train, probe, test = splits["train"], splits["probe"], splits["test"]
    assert len(probe) == 64 and len(test) == 360 and len(train) + len(probe) == 1437
    train_rows = {tuple(row.tolist()) for row in train.pixel_values.flatten(1)}
    assert sum(tuple(row.tolist()) in train_rows for row in probe.pixel_values.flatten(1)) <= 2  # digits has dupes
    with pytest.raises(ValueError, match="probe_size"):
        load_digits_splits(seed=0, probe_size=5000)


def test_train_once_uses_the_given_pieces_and_reports_metrics_and_time(splits):
    counter = CountSteps()
    result = train_once(
        splits["train"],
        max_steps=30,
        seed=0,
        model_factory=lambda: DigitsMLP(hidden=16),
        eval_dataset=splits["test"],
        callbacks=[counter],
        trainer_class=TaggedTrainer,
        training_args={"learning_rate": 0.1, "per_device_train_batch_size": 16},
    )
    assert counter.steps == 30 and set(counter.learning_rates) == {0.1}
    assert isinstance(result.trainer, TaggedTrainer) and result.trainer.args.per_device_train_batch_size == 16
    assert result.train_seconds > 0
    assert result.metrics == evaluate(result.model, splits["test"])
    untrained = evaluate(DigitsMLP(hidden=16), splits["test"])
    assert result.metrics["loss"] < untrained["loss"]  # 30 SGD steps learn something
    assert 0.0 <= result.metrics["accuracy"] <= 1.0


def test_train_once_is_reproducible_and_takes_an_optimizer_the_trainer_cannot_name(splits):
    def adadelta(parameters):
        return torch.optim.Adadelta(parameters, lr=1.0)

    runs = [
        train_once(splits["train"], max_steps=5, seed=3, eval_dataset=splits["test"], optimizer_factory=adadelta)
        for _ in range(2)
    ]
    optimizer = runs[0].trainer.optimizer
    assert isinstance(getattr(optimizer, "optimizer", optimizer), torch.optim.Adadelta)  # accelerate wraps it
    assert runs[0].metrics == runs[1].metrics


def test_train_once_keeps_a_given_output_dir(splits, tmp_path):
    train_once(
        splits["train"],
        max_steps=4,
        output_dir=str(tmp_path),
        training_args={"save_strategy": "steps", "save_steps": 4},
    )
    assert (tmp_path / "checkpoint-4" / "trainer_state.json").exists()


def test_evaluate_counts_every_example():
    model = DigitsMLP(hidden=8)
    data = InMemoryExamples(torch.randn(5, 8, 8), torch.tensor([0, 1, 2, 3, 4]))
    logits = model(data.pixel_values)["logits"]
    expected = (logits.argmax(-1) == data.labels).float().mean().item()
    assert evaluate(model, data, batch_size=2)["accuracy"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="same length"):
        InMemoryExamples(torch.zeros(3, 8, 8), torch.zeros(2))


def test_the_helper_is_not_a_benchmark():
    assert "training" not in available_benchmarks()
