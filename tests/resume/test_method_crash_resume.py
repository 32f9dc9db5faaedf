"""SWAP and the per-instance learning rates (and Data Parameters), killed with SIGKILL at a chosen step, resumed in
fresh processes, end bit for bit where the uninterrupted run ends: weights, optimizer and scheduler state, the
callbacks' ``state()`` and the method's own tensors (SWAP's saved ``swap_averaged`` folder, the learned rates)."""

from pathlib import Path

import pytest
from method_recipes import swap

from hf_eff.testing.resume import assert_same_outcome, crash_resume


RECIPES = str(Path(__file__).with_name("method_recipes.py"))
SWAP, INSTANCE_LR = f"{RECIPES}:swap", f"{RECIPES}:instance_lr"


def _swap_events(result) -> list[tuple[str, int]]:
    (state,) = result.resumed[0]["callbacks"]["SWAPCallback"]
    return [(record["event"], record["global_step"]) for record in state["attributes"]["progress"]["history"]]


# one process, sequential workers: phase 1 = steps 1-4, worker 0 = steps 5-8, worker 1 = steps 9-12; checkpoints
# every 2 steps, so each kill resumes inside the same phase (or worker) it was killed in
@pytest.mark.parametrize(
    "kill_at_step",
    [
        pytest.param(3, id="phase1"),
        pytest.param(7, id="phase2-worker0"),
        pytest.param(11, id="phase2-worker1"),
    ],
)
def test_swap_resumes_exactly_after_a_sigkill(tmp_path, kill_at_step):
    result = crash_resume(SWAP, tmp_path, kill_at_step=kill_at_step)
    result.assert_identical()
    assert _swap_events(result) == [("phase1_end", 4), ("worker_end", 8), ("worker_end", 12), ("averaged", 12)]
    assert_same_outcome(result.resumed[0]["extra"]["swap_averaged"], result.resumed[0]["model"], label="saved")


def test_swap_killed_in_phase3_resumes_from_the_last_phase2_checkpoint(tmp_path):
    """Phase 3 (average, BatchNorm recompute, save) runs after the last step; a job killed there left the checkpoint
    of the last step (phase 3, not yet averaged) and resumes straight into the averaging: same model. (In-process:
    what is on disk is the same as after a SIGKILL during phase 3.)"""
    full, _ = swap(str(tmp_path / "full"), save_steps=12)
    full.train()
    resumed, _ = swap(str(tmp_path / "full"), save_steps=12)
    resumed.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-12"))
    assert resumed.swap_callback.averaged and resumed.state.global_step == 12
    assert_same_outcome(dict(full.model.state_dict()), dict(resumed.model.state_dict()), label="averaged model")


@pytest.mark.multiprocess
@pytest.mark.parametrize("kill_at_step", [pytest.param(3, id="phase1"), pytest.param(7, id="phase2")])
def test_swap_resumes_exactly_when_one_of_two_workers_is_killed(tmp_path, kill_at_step):
    result = crash_resume(
        SWAP, tmp_path, kill_at_step=kill_at_step, options={"num_workers": None}, world_size=2, kill_rank=1
    )
    result.assert_identical()
    assert _swap_events(result) == [("phase1_end", 4), ("worker_end", 8), ("averaged", 8)]
    assert_same_outcome(result.resumed[0]["model"], result.resumed[1]["model"], label="rank 0 vs rank 1")


def test_instance_lr_resumes_exactly_after_a_sigkill(tmp_path):
    result = crash_resume(INSTANCE_LR, tmp_path, kill_at_step=7)
    result.assert_identical()
    shared = result.resumed[0]["extra"]["shared"]
    assert (shared["log_rates"] != 0).any() and (shared["class_log_rates"] != 0).any()  # the rates were learned
    assert result.resumed[0]["extra"]["local"]  # per-sample data awaiting its next references crossed the resume


@pytest.mark.multiprocess
def test_instance_lr_resumes_exactly_when_one_of_two_ranks_is_killed(tmp_path):
    result = crash_resume(
        INSTANCE_LR, tmp_path, kill_at_step=7, options={"per_device_train_batch_size": 8}, world_size=2, kill_rank=1
    )
    result.assert_identical()
    rates = [outcome["extra"]["shared"] for outcome in result.resumed]
    assert_same_outcome(rates[0], rates[1], label="rank 0 vs rank 1 rates")


def test_data_parameters_resume_exactly_after_a_sigkill(tmp_path):
    result = crash_resume(INSTANCE_LR, tmp_path, kill_at_step=7, options={"method": "data_parameters"})
    result.assert_identical()
    assert (result.resumed[0]["extra"]["shared"]["instance_log_temperatures"] != 0).any()


@pytest.mark.slow
@pytest.mark.parametrize("kill_at_step", [5, 6, 9, 10, 12])
def test_swap_every_kill_point_resumes_exactly(tmp_path, kill_at_step):
    crash_resume(SWAP, tmp_path, kill_at_step=kill_at_step).assert_identical()


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.parametrize("kill_rank", [0, 1])
def test_swap_two_workers_killed_at_the_first_phase2_step(tmp_path, kill_rank):
    options = {"num_workers": None}
    crash_resume(SWAP, tmp_path, kill_at_step=5, options=options, world_size=2, kill_rank=kill_rank).assert_identical()


@pytest.mark.slow
@pytest.mark.parametrize("kill_at_step", [3, 5, 11])
@pytest.mark.parametrize("method", ["instance_lr", "data_parameters"])
def test_per_sample_methods_every_kill_point_resumes_exactly(tmp_path, method, kill_at_step):
    crash_resume(INSTANCE_LR, tmp_path, kill_at_step=kill_at_step, options={"method": method}).assert_identical()
