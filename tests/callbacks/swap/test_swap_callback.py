"""SWAP in one process: the plain-Trainer error, the phase-1 stopping criteria, sequential workers averaged, a
resume inside phase 2, the saved averaged model, and argument checks."""

import types

import pytest
import torch
from swap_helpers import TinySWAPClassifier, make_args, make_data, make_model
from transformers import Trainer, TrainerCallback

from hf_eff import SWAPCallback, SWAPConfig, SWAPTrainer


PHASE2 = {"phase2_learning_rate": 0.05, "phase2_batch_size": 8, "phase2_steps": 5, "num_workers": 2}


class WorkerEnds(TrainerCallback):
    """Put before SWAPCallback: keeps every step's weights, so each worker's last weights can be read."""

    def __init__(self):
        self.steps = {}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.steps[state.global_step] = {k: v.detach().clone() for k, v in model.state_dict().items()}


def _trainer(output_dir, swap, *, callbacks=(), momentum=None, **args):
    model = make_model()
    optimizer = None if momentum is None else torch.optim.SGD(model.parameters(), lr=0.1, momentum=momentum)
    return SWAPTrainer(
        model=model,
        args=make_args(output_dir, **args),
        train_dataset=make_data(),
        eval_dataset=make_data(seed=1),
        callbacks=[*callbacks, swap],
        optimizers=(optimizer, None),
    )


def test_plain_trainer_raises_one_clear_error(tmp_path):
    trainer = Trainer(
        model=make_model(), args=make_args(tmp_path), train_dataset=make_data(), callbacks=[SWAPCallback(**PHASE2)]
    )
    with pytest.raises(ValueError, match="SWAPCallback needs a Trainer with .*SWAPTrainerMixin .*hf_eff.SWAPTrainer"):
        trainer.train()
    assert trainer.state.global_step == 0  # nothing was trained without SWAP


def test_sequential_workers_are_averaged_and_saved(tmp_path):
    ends, swap = WorkerEnds(), SWAPCallback(**PHASE2)
    trainer = _trainer(tmp_path, swap, callbacks=[ends])
    output = trainer.train()
    phase1, steps = 4, PHASE2["phase2_steps"]
    assert [record["event"] for record in swap.history] == ["phase1_end", "worker_end", "worker_end", "averaged"]
    worker_ends = [ends.steps[phase1 + steps], ends.steps[phase1 + 2 * steps]]
    start = ends.steps[phase1]
    averaged = trainer.model.state_dict()
    names = [name for name, _ in trainer.model.named_parameters()]
    # (the bias of the Linear before BatchNorm gets no gradient, so compare the parameters as a whole)
    assert any(not torch.equal(worker_ends[0][name], worker_ends[1][name]) for name in names)  # own data orders
    assert any(not torch.equal(worker_ends[1][name], start[name]) for name in names)
    for name in names:
        torch.testing.assert_close(averaged[name], (worker_ends[0][name] + worker_ends[1][name]) / 2)
    assert output.metrics["swap/worker_distance_to_mean"] > 0
    assert "eval_swap_loss" in output.metrics
    assert any("swap/phase1_steps" in entry for entry in trainer.state.log_history)
    # a normal from_pretrained checkpoint with its card
    loaded = TinySWAPClassifier.from_pretrained(tmp_path / "swap_averaged")
    for name, tensor in loaded.state_dict().items():
        torch.testing.assert_close(tensor, averaged[name])
    card = (tmp_path / "swap_averaged" / "README.md").read_text()
    assert "trained with SWAP" in card and "worker_end" in card


def test_phase1_stops_at_the_training_accuracy_threshold(tmp_path):
    swap = SWAPCallback(**PHASE2, stop_accuracy=0.9, accuracy_check_steps=1, save_averaged_model=False)
    # a small learning rate: several phase-1 steps below the threshold before it is reached
    trainer = _trainer(tmp_path, swap, max_steps=60, learning_rate=0.05)
    trainer.train()
    accuracies = [
        entry["swap/train_accuracy"] for entry in trainer.state.log_history if "swap/train_accuracy" in entry
    ]
    end = swap.phase1_end_step
    assert swap.history[0]["reason"].startswith("train accuracy")
    assert 1 < end < 60 and len(accuracies) == end
    assert accuracies[-1] >= 0.9 and all(accuracy < 0.9 for accuracy in accuracies[:-1])


def test_phase1_stop_fn_and_budget(tmp_path):
    swap = SWAPCallback(**PHASE2, phase1_stop_fn=lambda state: state.global_step >= 2, save_averaged_model=False)
    _trainer(tmp_path / "fn", swap).train()
    assert swap.phase1_end_step == 2 and swap.history[0]["reason"] == "phase1_stop_fn"
    swap = SWAPCallback(**PHASE2, save_averaged_model=False)
    _trainer(tmp_path / "budget", swap, max_steps=3).train()
    assert swap.phase1_end_step == 3 and "budget" in swap.history[0]["reason"]


@pytest.mark.parametrize("restore_flag", [True, False])
def test_resume_inside_phase2_gives_the_same_average(tmp_path, restore_flag):
    # momentum carried from phase 1 into every worker: the optimizer state must survive the resume too
    config = dict(PHASE2, phase2_optimizer_state="carry", save_averaged_model=False)
    momentum = {"momentum": 0.9, "save_strategy": "steps", "save_steps": 4}
    reference = _trainer(tmp_path / "full", SWAPCallback(**config), **momentum)
    reference.train()
    # worker 0 runs steps 5-9, worker 1 steps 10-14: resume in the middle of worker 1
    checkpoint = tmp_path / "full" / "checkpoint-12"
    assert (checkpoint / "swap" / "worker-1.safetensors").is_file()
    assert (checkpoint / "swap" / "worker-sum.safetensors").is_file()
    swap = SWAPCallback(**config)
    resumed = _trainer(tmp_path / "resumed", swap, restore_callback_states_from_checkpoint=restore_flag, **momentum)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert swap.averaged and swap.phase1_end_step == 4  # the callback given to the Trainer holds the result
    for name, tensor in reference.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], tensor)


def test_unsupported_setups_and_bad_arguments(tmp_path):
    swap = SWAPCallback(**PHASE2)
    sharded = types.SimpleNamespace(deepspeed=None, fsdp="full_shard", load_best_model_at_end=False)
    with pytest.raises(ValueError, match="not supported with DeepSpeed ZeRO or FSDP: .* sharded"):
        swap._check_setup(sharded)
    with pytest.raises(ValueError, match="num_workers >= 2"):
        _trainer(tmp_path, SWAPCallback(**dict(PHASE2, num_workers=None))).train()
    with pytest.raises(ValueError, match="exactly one of phase2_steps and phase2_epochs"):
        SWAPConfig(phase2_learning_rate=0.1, phase2_batch_size=8)
    with pytest.raises(ValueError, match="stop_accuracy is a fraction"):
        SWAPConfig(phase2_learning_rate=0.1, phase2_batch_size=8, phase2_steps=1, stop_accuracy=90)
    with pytest.raises(ValueError, match="phase2_data_order must be one of"):
        SWAPConfig(phase2_learning_rate=0.1, phase2_batch_size=8, phase2_steps=1, phase2_data_order="random")
    with pytest.raises(TypeError, match="unknown SWAPCallback arguments"):
        SWAPCallback(**PHASE2, phase2_lr=0.1)
    with pytest.raises(ValueError, match="exactly one SWAPCallback"):
        SWAPTrainer(model=make_model(), args=make_args(tmp_path), train_dataset=make_data())
