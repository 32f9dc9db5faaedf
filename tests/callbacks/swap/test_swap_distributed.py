"""SWAP over 2 CPU processes (gloo): workers diverge in phase 2, phase 3 makes them one averaged model, and a
single process running the 2 workers one after another gives the same averaged weights."""

import pytest
import torch
from swap_helpers import make_args, make_data, make_model
from transformers import TrainerCallback

from hf_eff.testing.distributed import run_distributed


PHASE1_STEPS, PHASE2_STEPS = 3, 4


class SnapshotCallback(TrainerCallback):
    """Keeps the weights after every step and at the end of the training loop (before SWAP averages)."""

    def __init__(self):
        self.steps, self.end = {}, None

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.steps[state.global_step] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.end = {k: v.detach().clone() for k, v in model.state_dict().items()}


def train_swap(output_dir, *, batch_norm: bool, per_device_batch: int, num_workers=None, resume=None, **args):
    from hf_eff import SWAPCallback, SWAPTrainer

    snapshots = SnapshotCallback()
    swap = SWAPCallback(
        phase2_learning_rate=0.05,
        phase2_batch_size=8,
        phase2_steps=PHASE2_STEPS,
        num_workers=num_workers,
        save_averaged_model=False,
    )
    trainer = SWAPTrainer(
        model=make_model(batch_norm=batch_norm),
        args=make_args(output_dir, per_device_train_batch_size=per_device_batch, max_steps=PHASE1_STEPS, **args),
        train_dataset=make_data(),
        callbacks=[snapshots, swap],
    )
    trainer.train(resume_from_checkpoint=resume)
    final = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    return {"steps": snapshots.steps, "end": snapshots.end, "final": final, "history": swap.history}


def _distributed_run(output_dir, batch_norm, with_resume):
    # 2 processes x 32 examples = the same global batch of 64 as the single-process run
    saving = {"save_strategy": "steps", "save_steps": 5} if with_resume else {}
    result = train_swap(f"{output_dir}/run", batch_norm=batch_norm, per_device_batch=32, **saving)
    if with_resume:  # a second run resumed inside phase 2 (steps 4-7) from the first run's checkpoint
        checkpoint = f"{output_dir}/run/checkpoint-5"
        resumed = train_swap(f"{output_dir}/resumed", batch_norm=batch_norm, per_device_batch=32, resume=checkpoint)
        result["resumed_final"] = resumed["final"]
    return result


def _bn_statistics(model_state, batch_size=32):
    """BatchNorm running mean/variance of a fresh cumulative pass over the training data, computed by hand:
    the mean over batches of each batch's mean and unbiased variance of the pre-BatchNorm activations."""
    model = make_model(batch_norm=True)
    model.load_state_dict(model_state)
    with torch.no_grad():
        pre = model.body[0](make_data().features).split(batch_size)
    return torch.stack([b.mean(0) for b in pre]).mean(0), torch.stack([b.var(0) for b in pre]).mean(0)


@pytest.mark.multiprocess
def test_two_processes_diverge_then_average_with_recomputed_batchnorm_and_resume(tmp_path):
    results = run_distributed(_distributed_run, str(tmp_path), True, True, world_size=2, timeout=240)
    mid = PHASE1_STEPS + 2
    parameters = [name for name, _ in make_model().named_parameters()]
    # phase 1 is synchronous: identical weights on both ranks
    for name in parameters:
        torch.testing.assert_close(results[0]["steps"][PHASE1_STEPS][name], results[1]["steps"][PHASE1_STEPS][name])
    # phase 2: no gradient all-reduce, the workers differ
    assert any(not torch.equal(results[0]["steps"][mid][n], results[1]["steps"][mid][n]) for n in parameters)
    assert any(not torch.equal(results[0]["end"][n], results[1]["end"][n]) for n in parameters)
    # phase 3: identical on both ranks and equal to the mean of the workers' phase-2 weights
    for name in parameters:
        assert torch.equal(results[0]["final"][name], results[1]["final"][name])
        mean = (results[0]["end"][name] + results[1]["end"][name]) / 2
        torch.testing.assert_close(results[0]["final"][name], mean)
    # a run resumed in the middle of phase 2 ends with the same averaged model on both ranks
    for rank in (0, 1):
        for name, tensor in results[rank]["final"].items():
            torch.testing.assert_close(results[rank]["resumed_final"][name], tensor)
    # BatchNorm statistics recomputed from a fresh pass with the averaged weights (same on both ranks)
    expected_mean, expected_var = _bn_statistics(results[0]["final"])
    for rank in (0, 1):
        torch.testing.assert_close(results[rank]["final"]["body.1.running_mean"], expected_mean)
        torch.testing.assert_close(results[rank]["final"]["body.1.running_var"], expected_var)


@pytest.mark.multiprocess
def test_sequential_mode_matches_two_processes(tmp_path):
    # no BatchNorm here: phase-1 BN statistics of a 2 x 32 DDP batch differ from one 64 batch by definition
    distributed = run_distributed(_distributed_run, str(tmp_path / "ddp"), False, False, world_size=2, timeout=240)
    sequential = train_swap(tmp_path / "seq", batch_norm=False, per_device_batch=64, num_workers=2)
    for name, value in sequential["final"].items():
        torch.testing.assert_close(value, distributed[0]["final"][name], rtol=1e-5, atol=1e-6)
