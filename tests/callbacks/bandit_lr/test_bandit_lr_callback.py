"""BanditLRCallback with the D-UCB bandit inside real Trainer runs: learning rates applied, schedule kept, backtracking, resume, 2 ranks."""

import json
import logging
import math
from pathlib import Path

import pytest
import torch
from callback_testing import RecordLogs
from torch import nn
from transformers import Trainer, TrainerCallback, TrainingArguments, get_scheduler

from hf_eff.callbacks.bandit_lr import BanditLRCallback, BanditLRTrainer
from hf_eff.testing import run_distributed


class TinyClassifier(nn.Module):
    def __init__(self, features: int = 8, hidden: int = 16, classes: int = 3, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(features, hidden), nn.Tanh(), nn.Dropout(dropout), nn.Linear(hidden, classes)
        )

    def forward(self, features, labels=None):
        logits = self.net(features)
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return {"loss": loss, "logits": logits}


def make_examples(n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """A learnable 3-class problem: the label is the argmax of a fixed linear map of the features."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(n, 8, generator=generator)
    weights = torch.randn(8, 3, generator=torch.Generator().manual_seed(1234))
    labels = (features @ weights).argmax(-1)
    return [{"features": f, "labels": y} for f, y in zip(features, labels)]


TRAIN, PROBE = make_examples(512, seed=0), make_examples(64, seed=1)


def ducb_callback(*args, **kwargs) -> BanditLRCallback:
    """The paper's D-UCB bandit (kept by name; the default selector, racing, is tested in test_racing.py)."""
    return BanditLRCallback(*args, **{"bandit": "ducb", **kwargs})


def make_trainer(
    tmp_path: Path, callback, *extra_callbacks, model=None, trainer_class=Trainer, **overrides
) -> Trainer:
    settings = {
        "output_dir": str(tmp_path),
        "max_steps": 30,
        "per_device_train_batch_size": 16,
        "learning_rate": 0.1,
        "lr_scheduler_type": "constant",
        "optim": "sgd",
        "logging_steps": 5,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": True,
        "seed": 0,
        "data_seed": 0,
    }
    settings.update(overrides)
    torch.manual_seed(0)
    return trainer_class(
        model=model if model is not None else TinyClassifier(),
        args=TrainingArguments(**settings),
        train_dataset=TRAIN,
        callbacks=[callback, *extra_callbacks],
    )


class RecordLearningRates(TrainerCallback):
    """Reads the param groups just before ``optimizer.step()``: the rate the update really uses."""

    def __init__(self, bandit: BanditLRCallback):
        self.bandit = bandit
        self.steps = []  # (global_step about to be taken, group lrs, arm being played)

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        lrs = [group["lr"] for group in optimizer.param_groups]
        self.steps.append((state.global_step + 1, lrs, self.bandit.current_lr))


def test_absolute_mode_the_optimizer_uses_the_chosen_arm_every_step(tmp_path):
    arms = [0.01, 0.1, 0.5]
    bandit = ducb_callback(arms, episode_steps=3, probe_dataset=PROBE, seed=1)
    recorder = RecordLearningRates(bandit)
    trainer = make_trainer(tmp_path, bandit, recorder)
    trainer.train()

    assert len(recorder.steps) == 30
    for _, lrs, arm in recorder.steps:
        assert lrs == [arm] * len(lrs)
    # each finished episode played the rate recorded in its history, for all of its steps
    assert len(bandit.history) == 10
    for episode, record in enumerate(bandit.history):
        used = {lr for step, lrs, _ in recorder.steps[3 * episode : 3 * episode + 3] for lr in lrs}
        assert used == {record["arm_value"]}
    assert set(bandit.arm_trace) == set(arms)  # the first episodes try every arm
    # what Trainer logs as the learning rate is the rate really used
    used_at = {step: lrs[0] for step, lrs, _ in recorder.steps}
    logged = [
        (entry["step"], entry["learning_rate"]) for entry in trainer.state.log_history if "learning_rate" in entry
    ]
    assert logged and all(lr == used_at[step] for step, lr in logged)
    # episode statistics are in the log history (what TensorBoard / W&B integrations read)
    episode_logs = [entry for entry in trainer.state.log_history if "bandit_lr/arm_value" in entry]
    assert [entry["bandit_lr/arm_value"] for entry in episode_logs] == bandit.arm_trace
    assert all(f"bandit_lr/count@{arm:g}" in episode_logs[-1] for arm in arms)


@pytest.mark.parametrize("trainer_class", [Trainer, BanditLRTrainer])
def test_every_episode_is_logged_and_integrations_see_it_with_the_mixin(tmp_path, trainer_class):
    bandit = ducb_callback([0.01, 0.1, 0.5], episode_steps=4, probe_dataset=PROBE, seed=1)
    integration = RecordLogs()
    trainer = make_trainer(
        tmp_path, integration, bandit, trainer_class=trainer_class, logging_steps=100, max_steps=20
    )  # the integration-like callback comes first, as integrations do
    trainer.train()
    entries = [entry for entry in trainer.state.log_history if "bandit_lr/arm_value" in entry]
    assert [entry["bandit_lr/arm_value"] for entry in entries] == bandit.arm_trace  # one entry per episode
    assert [entry["step"] for entry in entries] == [4, 8, 12, 16, 20]
    seen = [entry for entry in integration.logs if "bandit_lr/arm_value" in entry]
    assert len(seen) == (5 if trainer_class is BanditLRTrainer else 0)


def test_multiplier_mode_keeps_the_schedule_shape(tmp_path):
    arms = [0.5, 1.0, 2.0]
    bandit = ducb_callback(arms, episode_steps=4, mode="multiplier", probe_dataset=PROBE, seed=3)
    recorder = RecordLearningRates(bandit)
    trainer = make_trainer(tmp_path, bandit, recorder, lr_scheduler_type="linear", warmup_steps=6, max_steps=32)
    trainer.train()

    reference = get_scheduler(
        "linear", torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1), num_warmup_steps=6, num_training_steps=32
    )
    for step, lrs, multiplier in recorder.steps:
        scheduled = reference.get_last_lr()[0]  # the schedule's rate for this step, without the bandit
        assert lrs == pytest.approx([multiplier * scheduled] * len(lrs), rel=1e-12, abs=1e-15), step
        reference.optimizer.step()
        reference.step()
    assert len(set(bandit.arm_trace)) > 1


@pytest.mark.parametrize("rejected_reward", ["zero", "observed"])
def test_backtracking_restores_the_exact_weights_optimizer_and_schedule(tmp_path, rejected_reward):
    # a single, absurd arm: every episode makes the probe loss worse and must be undone
    bandit = ducb_callback(
        [500.0],
        episode_steps=4,
        probe_dataset=PROBE,
        backtrack=True,
        mode="multiplier",
        rejected_reward=rejected_reward,
    )
    model = TinyClassifier()
    initial = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    trainer = make_trainer(
        tmp_path, bandit, model=model, optim="adamw_torch", lr_scheduler_type="linear", max_steps=12, learning_rate=1.0
    )
    trainer.train()

    assert [record["backtracked"] for record in bandit.history] == [True, True, True]
    rewards = [record["reward"] for record in bandit.history]
    assert rewards == [0.0] * 3 if rejected_reward == "zero" else all(reward < 0 for reward in rewards)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, initial[name]), name
    assert len(trainer.optimizer.state) == 0  # Adam moments of the rejected steps are gone too
    assert trainer.lr_scheduler.last_epoch == 0


def test_backtracking_keeps_good_episodes_and_undoes_bad_ones(tmp_path):
    bandit = ducb_callback([0.05, 300.0], episode_steps=3, probe_dataset=PROBE, backtrack=True, seed=0)
    starts = []

    class RecordEpisodeStarts(TrainerCallback):
        def on_step_begin(self, args, state, control, model=None, **kwargs):
            if bandit.steps_in_episode == 0:
                starts.append({k: v.clone() for k, v in model.state_dict().items()})

    trainer = make_trainer(tmp_path, bandit, RecordEpisodeStarts(), max_steps=24)
    trainer.train()
    flags = [record["backtracked"] for record in bandit.history]
    assert True in flags and False in flags
    for episode, backtracked in enumerate(flags[:-1]):
        same = all(torch.equal(starts[episode][k], starts[episode + 1][k]) for k in starts[episode])
        assert same == backtracked, episode  # a rejected episode leaves the next one at the same weights
    assert all(record["arm_value"] == 300.0 for record in bandit.history if record["backtracked"])


def test_probe_loss_is_measured_in_eval_mode_and_training_mode_is_restored():
    model = TinyClassifier(dropout=0.5)
    bandit = ducb_callback([0.1], probe_dataset=PROBE, probe_batch_size=10)
    model.train()
    loss = bandit._probe_loss(model)
    assert model.training
    model.eval()
    with torch.no_grad():
        features = torch.stack([example["features"] for example in PROBE])
        labels = torch.stack([example["labels"] for example in PROBE])
        expected = nn.functional.cross_entropy(model(features)["logits"], labels).item()
    assert loss == pytest.approx(expected, rel=1e-6)


def test_train_loss_reward_uses_the_logged_loss(tmp_path):
    bandit = ducb_callback([0.02, 0.2], episode_steps=5, reward="train_loss", reward_scaling="none", seed=0)
    trainer = make_trainer(tmp_path, bandit, logging_steps=5, max_steps=30)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert [record["end_loss"] for record in bandit.history] == pytest.approx(losses)
    assert bandit.history[0]["reward"] is None  # the first episode only sets the reference
    expected = [(a - b) / a for a, b in zip(losses, losses[1:])]
    assert [record["reward"] for record in bandit.history[1:]] == pytest.approx(expected)

    with pytest.raises(ValueError, match="logging_steps == episode_steps"):
        make_trainer(tmp_path, ducb_callback([0.1], episode_steps=5, reward="train_loss"), logging_steps=3).train()


def test_rewards_are_relative_decreases_scaled_by_their_running_size_and_clipped():
    bandit = ducb_callback([0.1], probe_dataset=PROBE, reward_bound=2.0)
    assert bandit._reward(1.0, 0.9) == pytest.approx(1.0)  # the first reward sets the scale: 0.1
    assert bandit._reward(0.9, 0.855) == pytest.approx(0.5)  # 5% against a scale of 10%
    assert bandit.reward_scale == pytest.approx(0.9 * 0.1 + 0.1 * 0.05)
    assert bandit._reward(1.0, 0.0) == 2.0  # 100% / 9.5% clipped to reward_bound
    assert bandit._reward(1.0, float("nan")) == -2.0
    unscaled = ducb_callback([0.1], probe_dataset=PROBE, reward_scaling="none")
    assert unscaled._reward(2.0, 1.5) == pytest.approx(0.25)
    assert unscaled._reward(1.0, 5.0) == -3.0  # a 400% increase, clipped to the default bound


def _train_and_checkpoint(tmp_path, max_steps, resume=None, restore=True):
    bandit = ducb_callback([0.01, 0.05, 0.2, 0.8], episode_steps=4, probe_dataset=PROBE, seed=5)
    trainer = make_trainer(
        tmp_path,
        bandit,
        max_steps=max_steps,
        save_strategy="steps",
        save_steps=10,
        restore_callback_states_from_checkpoint=restore,
    )
    trainer.train(resume_from_checkpoint=resume)
    live = next(cb for cb in trainer.callback_handler.callbacks if isinstance(cb, BanditLRCallback))
    return trainer, live


def test_resume_reproduces_the_arm_sequence_of_an_uninterrupted_run(tmp_path):
    full, full_bandit = _train_and_checkpoint(tmp_path / "full", max_steps=40)
    # checkpoint-10 is in the middle of an episode (episode_steps=4): arm, step count and start loss are saved
    saved = json.loads((tmp_path / "full" / "checkpoint-10" / "trainer_state.json").read_text())
    progress = saved["stateful_callbacks"]["BanditLRCallback"]["attributes"]["progress"]
    assert progress["steps_in_episode"] == 2 and progress["current_arm"] is not None
    assert "rng" in progress["policy"]

    resumed, resumed_bandit = _train_and_checkpoint(
        tmp_path / "full", max_steps=40, resume=str(tmp_path / "full" / "checkpoint-10")
    )
    assert resumed_bandit.arm_trace == full_bandit.arm_trace
    assert len(set(full_bandit.arm_trace)) > 1
    assert resumed_bandit.policy.state_dict() == full_bandit.policy.state_dict()
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name  # bit for bit (tests/resume covers every mode and SIGKILL)


def test_resume_without_restoring_callback_states_warns_and_starts_a_fresh_bandit(tmp_path, caplog):
    _train_and_checkpoint(tmp_path, max_steps=12)
    with caplog.at_level(logging.WARNING, logger="hf_eff.callbacks.bandit_lr"):
        _, bandit = _train_and_checkpoint(
            tmp_path, max_steps=12, resume=str(tmp_path / "checkpoint-10"), restore=False
        )
    assert "restore_callback_states_from_checkpoint=True" in caplog.text
    assert len(bandit.history) == 0  # 2 steps after resuming: no episode finished, nothing inherited


def test_state_is_json_and_rebuilds_an_equivalent_callback(tmp_path):
    bandit = ducb_callback([0.01, 0.1], episode_steps=3, probe_dataset=PROBE, bandit="thompson")
    make_trainer(tmp_path, bandit, max_steps=9).train()
    state = json.loads(json.dumps(bandit.state()))
    clone = BanditLRCallback(**state["args"])  # what Trainer does on restore
    for attribute, value in state["attributes"].items():
        setattr(clone, attribute, value)
    assert clone.progress == bandit.progress
    assert clone.policy.select() == bandit.policy.select()


def _distributed_worker(tmp_dir: str):
    import torch.distributed as dist

    bandit = ducb_callback(
        [0.01, 0.05, 0.2, 50.0], episode_steps=3, probe_dataset=PROBE, probe_batch_size=16, backtrack=True, seed=2
    )
    recorder = RecordLearningRates(bandit)
    trainer = make_trainer(Path(tmp_dir), bandit, recorder, max_steps=24, per_device_train_batch_size=8)
    trainer.train()
    return {
        "rank": dist.get_rank(),
        "world_size": dist.get_world_size(),
        "arms": bandit.arm_trace,
        "rewards": [record["reward"] for record in bandit.history],
        "lrs": [lrs for _, lrs, _ in recorder.steps],
        "backtracked": [record["backtracked"] for record in bandit.history],
        "weights": [tensor.clone() for tensor in trainer.model.state_dict().values()],
        "probe_batches_here": len(bandit._probe_batches[dist.get_rank() :: dist.get_world_size()]),
    }


@pytest.mark.multiprocess
def test_two_processes_choose_identical_arms_and_backtrack_together(tmp_path):
    rank0, rank1 = run_distributed(_distributed_worker, str(tmp_path), world_size=2)
    assert (rank0["rank"], rank1["rank"], rank0["world_size"]) == (0, 1, 2)
    assert rank0["probe_batches_here"] == rank1["probe_batches_here"] == 2  # the probe set is split over ranks
    assert rank0["arms"] == rank1["arms"] and len(set(rank0["arms"])) > 1
    assert rank0["rewards"] == rank1["rewards"]  # all-reduced, bit for bit
    assert rank0["lrs"] == rank1["lrs"]
    assert rank0["backtracked"] == rank1["backtracked"] and any(rank0["backtracked"])  # the 50.0 arm is undone
    assert all(torch.equal(a, b) for a, b in zip(rank0["weights"], rank1["weights"]))  # replicas stay identical


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"arms": []}, ValueError, "at least one learning rate"),
        ({"arms": [0.1, 0.0]}, ValueError, r"arms\[1\] = 0.0"),
        ({"arms": [0.1, -1e-3]}, ValueError, "positive"),
        ({"arms": [0.1, math.inf]}, ValueError, "finite"),
        ({"arms": [0.1, 0.1]}, ValueError, "distinct"),
        ({"arms": 0.1}, TypeError, "sequence"),
        ({"episode_steps": 0}, ValueError, "episode_steps must be an int >= 1"),
        ({"episode_steps": 2.5}, ValueError, "episode_steps"),
        ({"probe_dataset": None}, ValueError, "needs a probe_dataset"),
        ({"probe_dataset": []}, ValueError, "probe_dataset is empty"),
        ({"mode": "relative"}, ValueError, "mode must be one of"),
        ({"reward": "accuracy"}, ValueError, "reward must be one of"),
        ({"bandit": "nope"}, ValueError, "bandit must be one of"),
        ({"bandit_kwargs": {"gamma": 2.0}}, ValueError, "gamma"),
        ({"reward_bound": 0}, ValueError, "reward_bound"),
        ({"probe_batch_size": 0}, ValueError, "probe_batch_size"),
        ({"reward_scaling": "zscore"}, ValueError, "reward_scaling must be one of"),
        ({"rejected_reward": "negative"}, ValueError, "rejected_reward must be one of"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, error, match):
    settings = {"arms": [0.1, 0.01], "episode_steps": 5, "probe_dataset": PROBE, **kwargs}
    with pytest.raises(error, match=match):
        ducb_callback(**settings)


def test_multiplier_mode_needs_a_lambda_schedule(tmp_path):
    model = TinyClassifier()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5)
    bandit = ducb_callback([1.0, 0.5], mode="multiplier", probe_dataset=PROBE)
    trainer = make_trainer(tmp_path, bandit, model=model)
    trainer.optimizer, trainer.lr_scheduler = optimizer, scheduler
    with pytest.raises(TypeError, match="mode='multiplier' scales the base rates of a LambdaLR"):
        trainer.train()


def test_a_rebuilt_callback_without_its_probe_set_fails_clearly(tmp_path):
    state = ducb_callback([0.1, 0.01], probe_dataset=PROBE).state()
    rebuilt = BanditLRCallback(**state["args"])  # what Trainer builds on resume, minus the live instance
    with pytest.raises(ValueError, match="needs a probe_dataset"):
        make_trainer(tmp_path, rebuilt, max_steps=2).train()


def test_probe_columns_the_model_does_not_take_are_dropped():
    from datasets import Dataset

    probe = Dataset.from_dict(
        {
            "features": [example["features"].tolist() for example in PROBE],
            "labels": [int(example["labels"]) for example in PROBE],
            "note": ["unused text"] * len(PROBE),
        }
    )
    model = TinyClassifier()
    from_dataset = ducb_callback([0.1], probe_dataset=probe)._probe_loss(model)
    from_examples = ducb_callback([0.1], probe_dataset=PROBE)._probe_loss(model)
    assert from_dataset == pytest.approx(from_examples, rel=1e-6)


def test_a_user_policy_instance_drives_the_run(tmp_path):
    from hf_eff.callbacks.bandit_lr import BanditPolicy

    class Alternate(BanditPolicy):
        name = "alternate_test"  # deliberately not registered

        def select(self):
            return self.rounds % self.num_arms

        def update(self, arm, reward):
            self._check_update(arm, reward)

    bandit = ducb_callback([0.01, 0.1], episode_steps=2, probe_dataset=PROBE, bandit=Alternate(2))
    make_trainer(tmp_path, bandit, max_steps=8).train()
    assert bandit.arm_trace == [0.01, 0.1, 0.01, 0.1]
    assert bandit.state()["args"]["bandit"] is None  # not registered: carried over from the live instance on resume
