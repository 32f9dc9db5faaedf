"""Killed with SIGKILL at any step, resumed in fresh processes, same result: every stateful hf_eff method, in one
process and in two (gloo), through the shared harness :mod:`hf_eff.testing.resume`."""

from pathlib import Path

import pytest
import torch

from hf_eff.testing.resume import assert_same_outcome, crash_resume


RECIPES = str(Path(__file__).with_name("recipes.py"))


def recipe(name: str) -> str:
    return f"{RECIPES}:{name}"


def test_spdf_resumes_exactly_after_a_sigkill(tmp_path):
    result = crash_resume(recipe("spdf"), tmp_path, kill_at_step=9, options={"max_steps": 12})
    result.assert_identical()
    masks = result.resumed[0]["extra"]["masks"]
    assert masks and all(mask.dtype == torch.bool for mask in masks.values())
    assert result.resumed[0]["extra"]["tokens_seen"] == 12 * 4 * 16  # steps x batch x tokens, none counted twice


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "absolute", "backtrack": True},  # killed in the middle of the episode 8-12, after checkpoint-6
        {"mode": "multiplier", "backtrack": False},
    ],
)
def test_bandit_lr_resumes_exactly_after_a_sigkill(tmp_path, options):
    result = crash_resume(recipe("bandit_lr"), tmp_path, kill_at_step=10, options={"max_steps": 16, **options})
    result.assert_identical()
    (state,) = result.resumed[0]["callbacks"]["BanditLRCallback"]
    history = state["attributes"]["progress"]["history"]
    assert len(history) == 4 and len({record["arm"] for record in history}) > 1


def test_the_racing_selector_resumes_exactly_after_a_sigkill(tmp_path):
    options = {"max_steps": 16, "bandit": "race"}  # killed at step 10, inside the exploitation after the opening race
    result = crash_resume(recipe("bandit_lr"), tmp_path, kill_at_step=10, options=options)
    result.assert_identical()
    (state,) = result.resumed[0]["callbacks"]["BanditLRCallback"]
    history = state["attributes"]["progress"]["history"]
    assert [record.get("branch") for record in history[:3]] == [0, 1, 2]


@pytest.mark.multiprocess
def test_spdf_resumes_exactly_when_one_of_two_ranks_is_killed(tmp_path):
    result = crash_resume(
        recipe("spdf"), tmp_path, kill_at_step=9, options={"max_steps": 12}, world_size=2, kill_rank=1
    )
    result.assert_identical()
    assert [outcome["world_size"] for outcome in result.resumed] == [2, 2]
    assert_same_outcome(result.resumed[0]["model"], result.resumed[1]["model"], label="rank 0 vs rank 1")


@pytest.mark.multiprocess
def test_bandit_lr_resumes_exactly_when_one_of_two_ranks_is_killed(tmp_path):
    options = {"max_steps": 16, "backtrack": True, "per_device_train_batch_size": 2}
    result = crash_resume(recipe("bandit_lr"), tmp_path, kill_at_step=10, options=options, world_size=2, kill_rank=1)
    result.assert_identical()
    assert [outcome["world_size"] for outcome in result.resumed] == [2, 2]
    assert result.resumed[0]["callbacks"] == result.resumed[1]["callbacks"]  # both ranks took the same decisions
    (state,) = result.resumed[0]["callbacks"]["BanditLRCallback"]
    assert any(record["backtracked"] for record in state["attributes"]["progress"]["history"])


@pytest.mark.slow
@pytest.mark.parametrize("kill_at_step", [1, 5, 7, 13, 19])
@pytest.mark.parametrize("name", ["spdf", "bandit_lr"])
def test_every_kill_point_resumes_exactly(tmp_path, name, kill_at_step):
    options = {"max_steps": 20, **({"backtrack": True} if name == "bandit_lr" else {})}
    if kill_at_step < 6:  # no checkpoint yet: the harness says so instead of comparing anything
        with pytest.raises(RuntimeError, match="no checkpoint"):
            crash_resume(recipe(name), tmp_path, kill_at_step=kill_at_step, options=options)
        return
    crash_resume(recipe(name), tmp_path, kill_at_step=kill_at_step, options=options).assert_identical()


def test_the_harness_reports_state_lost_in_a_resume(tmp_path):
    result = crash_resume(recipe("forgetful"), tmp_path, kill_at_step=5, options={"max_steps": 7, "save_steps": 4})
    with pytest.raises(AssertionError, match="resumed run differs") as error:
        result.assert_identical()
    assert "rank 0/model/transformer.wte.weight: tensors differ" in str(error.value)
