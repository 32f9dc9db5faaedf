"""HfEffCallback and HfEffTrainerMixin: queued metrics reach the integrations, mixins compose, live objects survive
a rebuild, and a callback that needs a Trainer mixin says which."""

import pytest
import torch
from callback_testing import RecordLogs
from torch import nn
from transformers import Trainer, TrainingArguments

from hf_eff.callbacks.base import HfEffCallback, HfEffTrainer, HfEffTrainerMixin, current_trainer


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, features, labels=None):
        prediction = self.linear(features).squeeze(-1)
        loss = None if labels is None else nn.functional.mse_loss(prediction, labels)
        return {"loss": loss, "logits": prediction}


def examples(n: int = 32) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(n, 4, generator=generator)
    return [{"features": f, "labels": f.sum()} for f in features]


def train(tmp_path, trainer_class, *callbacks, max_steps: int = 4) -> Trainer:
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=max_steps,
        per_device_train_batch_size=8,
        logging_steps=100,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
    )
    torch.manual_seed(0)
    trainer = trainer_class(model=Regressor(), args=args, train_dataset=examples(), callbacks=list(callbacks))
    trainer.train()
    return trainer


class StepCounter(HfEffCallback):
    """Queues a metric every 2 steps and asks for a log entry, like a method reporting a phase change."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % 2 == 0:
            self.queue_logs({"counter/step": float(state.global_step)})
            control.should_log = True

    def state(self):
        return {"args": {}, "attributes": {}}


@pytest.mark.parametrize("trainer_class", [Trainer, HfEffTrainer])
def test_queued_metrics_join_the_log_history_and_reach_integrations_with_the_mixin(tmp_path, trainer_class):
    integration, counter = RecordLogs(), StepCounter()
    trainer = train(tmp_path, trainer_class, integration, counter)
    logged = [entry["counter/step"] for entry in trainer.state.log_history if "counter/step" in entry]
    assert logged == [2.0, 4.0]
    seen = [entry["counter/step"] for entry in integration.logs if "counter/step" in entry]
    assert seen == ([2.0, 4.0] if trainer_class is HfEffTrainer else [])
    assert counter.pop_pending_logs() == {}  # nothing left behind


class LossCountingMixin(HfEffTrainerMixin):
    """A method-specific mixin as SWAP or per-instance LR add: its own compute_loss, cooperative super()."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        self.loss_calls = getattr(self, "loss_calls", 0) + 1
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


class StepCountingMixin(HfEffTrainerMixin):
    def training_step(self, model, inputs, num_items_in_batch=None):
        self.steps_seen = getattr(self, "steps_seen", 0) + 1
        return super().training_step(model, inputs, num_items_in_batch)


class ComposedTrainer(LossCountingMixin, StepCountingMixin, Trainer):
    pass


class NeedsLossCounting(StepCounter):
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        super().on_train_begin(args, state, control, model=model, **kwargs)
        self.trainer = self.require_trainer(LossCountingMixin, suggestion="tests' ComposedTrainer")


def test_mixins_compose_by_cooperative_super(tmp_path):
    assert ComposedTrainer.__mro__.index(HfEffTrainerMixin) == ComposedTrainer.__mro__.index(Trainer) - 1
    integration, callback = RecordLogs(), NeedsLossCounting()
    trainer = train(tmp_path, ComposedTrainer, integration, callback, max_steps=4)
    assert trainer.loss_calls == trainer.steps_seen == 4  # each override ran once per step, down to Trainer
    assert callback.trainer is trainer
    assert trainer.hf_eff_callbacks() == [callback]
    assert trainer.hf_eff_callbacks(NeedsLossCounting) == [callback]
    assert [entry["counter/step"] for entry in integration.logs if "counter/step" in entry] == [2.0, 4.0]
    assert current_trainer() is None  # only set while train() runs


@pytest.mark.parametrize("trainer_class", [Trainer, HfEffTrainer])
def test_a_callback_needing_a_mixin_names_it_on_another_trainer(tmp_path, trainer_class):
    with pytest.raises(ValueError, match=r"NeedsLossCounting needs a Trainer with .*LossCountingMixin") as error:
        train(tmp_path, trainer_class, NeedsLossCounting())
    assert "tests' ComposedTrainer" in str(error.value)
    assert ("a plain Trainer" in str(error.value)) == (trainer_class is Trainer)


class WithProbe(HfEffCallback):
    live_attributes = ("probe", "collate")

    def __init__(self, probe=None, collate=None, size: int = 1):
        super().__init__()
        self.probe, self.collate, self.size = probe, collate, size

    def state(self):
        return {"args": {"size": self.size}, "attributes": {}}


class OtherWithProbe(WithProbe):
    pass


def test_a_rebuilt_callback_adopts_only_the_live_objects_it_lacks():
    model, probe = nn.Linear(2, 2), [1, 2, 3]
    original = WithProbe(probe=probe, collate=len, size=5)
    original.register_live_objects(model)
    rebuilt = WithProbe(**original.state()["args"])  # what Trainer does on resume
    rebuilt.collate = sorted  # already set: kept
    assert rebuilt.adopt_live_objects(model) == ["probe"]
    assert rebuilt.probe is probe and rebuilt.collate is sorted
    assert OtherWithProbe().adopt_live_objects(model) == []  # registered per class
    assert WithProbe().adopt_live_objects(nn.Linear(2, 2)) == []  # and per model
    assert WithProbe().adopt_live_objects(None) == []
