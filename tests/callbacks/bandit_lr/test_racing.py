"""The racing selector (the default): its plan and decisions on synthetic races, and in real Trainer runs that every
branch starts from the race's snapshot, the winner's branch is what training continues from (bit for bit), and two
processes race identically."""

import copy
import json
from pathlib import Path

import pytest
import torch
from test_bandit_lr_callback import PROBE, RecordLearningRates, make_trainer
from transformers import TrainerCallback

from hf_eff.callbacks.bandit_lr import BanditLRCallback, RacingPolicy, make_bandit
from hf_eff.testing import run_distributed


ARMS = [0.3, 0.01, 1.0, 0.1, 0.03]  # deliberately unsorted: neighbours are by value, not by index


def play(policy: RacingPolicy, reward_of) -> list[tuple[int, int]]:
    """Drive ``policy`` through its plan with ``reward_of(arm, step)``; returns (arm, episode length) per episode."""
    episodes, step = [], 0
    while step < policy.plan["total_steps"]:
        arm, length, both = (
            policy.select(),
            policy.episode_steps(),
            policy.branch_score == "averaged_weights_and_end_loss",
        )
        step += length
        reward = reward_of(arm, step)
        policy.update(arm, reward, reward if both else None)  # averaged weights and live end alike
        episodes.append((arm, length))
    assert step == policy.plan["total_steps"]  # the plan fills the run exactly: no race is cut off by the end
    return episodes


def test_the_plan_is_derived_from_the_run_length_and_the_number_of_arms():
    default = RacingPolicy(7).plan_budget(300, list(range(1, 8)))
    # the default anneals with a cooldown over the last 20% (60 steps) instead of closing races
    assert (default["look_ahead"], default["races"], default["cooldown_steps"]) == (5, 0, 60)
    assert default["exploit_steps"] == [300 - 7 * 5 - 2 * 30]
    policy = RacingPolicy(7, cooldown=0)  # no cooldown: one closing race
    plan = policy.plan_budget(300, [0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0])
    assert (plan["look_ahead"], plan["races"], plan["closing_look_ahead"], plan["cooldown_steps"]) == (5, 1, 15, 0)
    assert (plan["check_steps"], plan["confirm_look_ahead"]) == (30, 30)  # checks every T/10 steps
    assert plan["exploit_steps"] == [300 - 7 * 5 - 2 * 30 - 4 * 15, 15]
    assert policy.plan_budget(10_000, list(range(1, 8))) is plan  # planned once; a resumed run keeps the plan
    long = RacingPolicy(7, cooldown=0).plan_budget(3000, list(range(1, 8)))
    assert (long["look_ahead"], long["closing_look_ahead"]) == (50, 150)  # branches grow with the run
    short = RacingPolicy(7, cooldown=0).plan_budget(10, list(range(1, 8)))  # too short for a closing race
    assert (short["look_ahead"], short["races"], short["exploit_steps"]) == (1, 0, [3])
    assert RacingPolicy(3, races=2, exploration=0.4).plan_budget(400, [1, 2, 3])["closing_look_ahead"] == 20
    # a short run's opening branches are long enough to average over their last half (2 steps), unless judged by
    # their endpoint (the budget alone gives 2 steps here)
    assert RacingPolicy(7).plan_budget(150, list(range(1, 8)))["look_ahead"] == 4
    assert RacingPolicy(7, judge="endpoint").plan_budget(150, list(range(1, 8)))["look_ahead"] == 2


@pytest.mark.parametrize("total_steps", [7, 20, 57, 300, 1001])
def test_every_plan_ends_exactly_with_the_run(total_steps):
    for races in (None, 0, 2, 5):
        for cooldown in (0.0, 0.2):
            policy = RacingPolicy(5, races=races, cooldown=cooldown)
            policy.plan_budget(total_steps, ARMS)
            play(policy, lambda arm, step: 0.0)


def test_the_opening_race_picks_the_best_arm_and_the_closing_race_moves_one_grid_step():
    policy = RacingPolicy(len(ARMS), cooldown=0)
    policy.plan_budget(200, ARMS)
    # the best rate is 0.3 while training, 0.1 at the end (a short horizon favours the smaller one)
    best = {True: ARMS.index(0.1), False: ARMS.index(0.3)}
    late = 200 - 4 * policy.plan["closing_look_ahead"]

    def reward_of(arm, step):
        by_value = sorted(range(len(ARMS)), key=ARMS.__getitem__)
        return -abs(by_value.index(arm) - by_value.index(best[step > late]))

    episodes = play(policy, reward_of)
    opening = [arm for arm, _ in episodes[: len(ARMS)]]
    assert sorted(ARMS[arm] for arm in opening) == [ARMS[arm] for arm in opening]  # the grid in order of value
    ends = [sum(length for _, length in episodes[: i + 1]) for i in range(len(episodes))]
    confirm = [ARMS[arm] for arm, _ in episodes[len(ARMS) : len(ARMS) + 2]]
    assert confirm == [0.3, 0.1]  # the opening winner against its better-scored neighbour (a tie: the smaller)
    exploited = [arm for (arm, _), end in zip(episodes[len(ARMS) + 2 :], ends[len(ARMS) + 2 :]) if end <= late]
    assert set(exploited) == {ARMS.index(0.3)}  # the opening winner, checked every check_steps steps
    closing = [ARMS[arm] for (arm, _), end in zip(episodes, ends) if end > late][:3]
    assert closing == [0.3, 0.1, 1.0]  # current first, then its neighbours by value
    assert episodes[-1] == (ARMS.index(0.1), policy.plan["closing_look_ahead"])  # the run ends on the winner
    assert policy.current == policy.last_winner == ARMS.index(0.1)


def test_judged_by_the_endpoint_the_confirmation_race_keeps_a_winner_that_still_trains_stably():
    for winner_reward, kept in ((0.1, 1.0), (-0.1, 0.3)):
        policy = RacingPolicy(3, judge="endpoint")
        policy.plan_budget(300, [0.1, 0.3, 1.0])
        for arm in range(3):
            policy.update(arm, {0: 0.0, 1: 0.1, 2: 0.2}[arm])  # the opening race: 1.0 wins
        assert policy.select() == 2 and policy.episode_steps() == policy.plan["confirm_look_ahead"]
        policy.update(2, winner_reward)
        policy.update(1, 0.5)  # the smaller rate looks better over a short horizon (damped noise)
        assert [0.1, 0.3, 1.0][policy.current] == kept


def test_judged_by_the_tail_the_opening_winner_meets_its_better_neighbour_which_must_win_both_ways():
    grid = [0.03, 0.1, 0.3, 1.0, 3.0]
    for end_rewards, kept in (((0.2, 0.3), 1.0), ((0.3, 0.2), 0.3)):
        policy = RacingPolicy(len(grid), cooldown=0)
        policy.plan_budget(600, grid)
        assert [policy.branch_score] == ["averaged_weights"]  # the opening race: progress of the averaged weights
        for arm, reward in enumerate([0.0, 0.1, 0.4, 0.3, 0.2]):  # 0.3 wins; of its neighbours 1.0 scored better
            policy.update(arm, reward)
        assert policy.race["arms"] == [2, 3] and policy.branch_score == "averaged_weights_and_end_loss"
        with pytest.raises(ValueError, match="end_reward"):
            policy.update(2, 0.5)
        policy.update(2, 0.5, end_rewards[0])
        policy.update(3, 0.6, end_rewards[1])  # 1.0's averaged weights are better; its live end must be too
        assert grid[policy.current] == kept
    while policy.race is None:  # exploit until the closing race, judged by the loss the run ends with
        policy.update(policy.select(), 0.1)
    assert policy.race["kind"] == "neighbours" and policy.branch_score == "end_loss"
    endpoint = RacingPolicy(len(grid), judge="endpoint")
    endpoint.plan_budget(600, grid)
    assert endpoint.branch_score == "end_loss"
    with pytest.raises(ValueError, match="judge must be one of"):
        RacingPolicy(2, judge="mean")


def test_ties_keep_the_earlier_branch_and_the_state_round_trips_through_json():
    policy = make_bandit("race", len(ARMS), races=2)
    policy.plan_budget(300, ARMS)
    for _ in range(len(ARMS)):
        policy.update(policy.select(), 0.5)  # all tied: the first branch, the smallest rate, wins
    assert policy.current == ARMS.index(0.01)
    clone = make_bandit("race", len(ARMS), **policy.config())
    clone.load_state_dict(json.loads(json.dumps(policy.state_dict())))
    assert clone.state_dict() == policy.state_dict()
    assert (clone.select(), clone.episode_steps()) == (policy.select(), policy.episode_steps())
    with pytest.raises(ValueError, match="plan_budget"):
        RacingPolicy(2).select()
    with pytest.raises(ValueError, match="exploration must be in"):
        RacingPolicy(2, exploration=1.5)
    with pytest.raises(ValueError, match="look_ahead"):
        RacingPolicy(2, look_ahead=0)
    policy = RacingPolicy(2)
    policy.plan_budget(100, [1.0, 2.0])
    with pytest.raises(ValueError, match="expected a reward for arm 0"):
        policy.update(1, 0.1)


def test_racing_needs_the_probe_loss():
    with pytest.raises(ValueError, match="reward='probe_loss'"):
        BanditLRCallback([0.1, 0.2], reward="train_loss")


class RecordBranches(TrainerCallback):
    """Weights at the start of every episode and just before each race branch is scored."""

    def __init__(self, bandit: BanditLRCallback):
        self.bandit, self.starts, self.ends = bandit, [], []

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        if self.bandit.steps_in_episode == 0:
            self.starts.append(_weights(model))

    def on_step_end(self, args, state, control, model=None, **kwargs):
        # runs before the bandit's own on_step_end (added to the Trainer first): the branch's end weights
        if self.bandit.steps_in_episode + 1 == self.bandit.episode_length:
            self.ends.append(_weights(model))


def _weights(model) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def _same(a, b) -> bool:
    return all(torch.equal(a[name], b[name]) for name in a)


def test_branches_start_from_the_race_snapshot_and_training_continues_from_the_winner(tmp_path):
    bandit = BanditLRCallback([0.01, 0.1, 0.5, 40.0], probe_dataset=PROBE, bandit_kwargs={"cooldown": 0}, seed=1)
    recorder = RecordBranches(bandit)
    trainer = make_trainer(tmp_path, recorder, bandit, max_steps=60)
    trainer.train()
    plan = bandit.policy.plan
    assert plan["races"] == 1 and plan["look_ahead"] >= 1
    history = bandit.history
    races = []  # episode indices of each race, in order: opening, confirmation (unless 0.01 won), closing
    for i, record in enumerate(history):
        if record.get("branch") == 0:
            races.append([])
        if record.get("branch") is not None:
            races[-1].append(i)
    opening_winner = history[races[0][-1] + 1]["arm_value"] if len(races) == 2 else history[races[1][0]]["arm_value"]
    assert [len(race) for race in races] == ([4, 2, 3] if opening_winner != 0.01 else [4, 3])
    assert history[races[-1][0]]["global_step"] > 60 - 4 * plan["closing_look_ahead"]
    for race in races:
        assert all(_same(recorder.starts[race[0]], recorder.starts[i]) for i in race)  # one snapshot per race
        rewards = [history[i]["reward"] for i in race]
        winner = race[rewards.index(max(rewards))]
        assert [history[i]["kept"] for i in race] == [i == winner for i in race]
        assert _same(recorder.starts[race[-1] + 1], recorder.ends[winner])  # the winner's branch, bit for bit
    assert history[races[0][-1]]["arm_value"] == 40.0 and not history[races[0][-1]]["kept"]  # diverged, dropped
    assert history[-1]["global_step"] == 60 and history[-1].get("branch") is None  # the run ends exploiting


class RecordOpeningWeights(TrainerCallback):
    """The trainable weights after every step of the opening race's branches, per branch."""

    def __init__(self, bandit: BanditLRCallback):
        self.bandit, self.branches = bandit, {}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        # runs before the bandit's own on_step_end: the branch's weights after this step
        if self.bandit.policy.racing and self.bandit.policy.race["kind"] == "opening":
            weights = {name: p.detach().clone() for name, p in model.named_parameters()}
            self.branches.setdefault(len(self.bandit.history), []).append(weights)


def test_opening_branches_are_judged_by_the_probe_loss_of_their_tail_averaged_weights(tmp_path):
    from hf_eff.callbacks._utils import build_probe_batches, evaluate_probe_loss

    bandit = BanditLRCallback([0.01, 0.1, 0.5, 40.0], probe_dataset=PROBE, seed=1)
    recorder = RecordOpeningWeights(bandit)
    trainer = make_trainer(tmp_path, recorder, bandit, max_steps=60)
    trainer.train()
    look_ahead = bandit.policy.plan["look_ahead"]
    assert look_ahead == 4  # the floor that makes a 2-step tail (the budget alone gives 2)
    probe_model = copy.deepcopy(trainer.model)
    batches = build_probe_batches(PROBE, probe_model, 64)
    for episode, weights in recorder.branches.items():
        record = bandit.history[episode]
        tail = weights[look_ahead - look_ahead // 2 :]
        with torch.no_grad():
            for name, p in probe_model.named_parameters():
                p.copy_(torch.stack([w[name] for w in tail]).mean(0))
        expected = evaluate_probe_loss(probe_model, batches).mean
        assert record["score_loss"] == pytest.approx(expected, rel=1e-5), record
        assert record["end_loss"] is None  # the live end of a discarded branch is never evaluated
    assert len(recorder.branches) == 4
    confirm = [record for record in bandit.history if record.get("branch") is not None][4:6]
    assert all(record["end_loss"] is not None and record["score_loss"] is not None for record in confirm)


def test_learning_rate_follows_the_branch_played_and_the_schedule_the_global_step(tmp_path):
    bandit = BanditLRCallback([0.5, 1.0, 2.0], mode="multiplier", probe_dataset=PROBE, seed=0)
    recorder = RecordLearningRates(bandit)
    trainer = make_trainer(tmp_path, bandit, recorder, lr_scheduler_type="linear", max_steps=40)
    trainer.train()
    for step, lrs, multiplier in recorder.steps:  # the linear decay counts every step, discarded branches too
        assert lrs[0] == pytest.approx(multiplier * 0.1 * (1 - (step - 1) / 40), rel=1e-9), step


def _distributed_worker(tmp_dir: str):
    import torch.distributed as dist

    bandit = BanditLRCallback([0.01, 0.05, 0.2, 50.0], probe_dataset=PROBE, probe_batch_size=16, seed=2)
    trainer = make_trainer(Path(tmp_dir), bandit, max_steps=40, per_device_train_batch_size=8)
    trainer.train()
    return {
        "rank": dist.get_rank(),
        "history": bandit.history,
        "weights": [tensor.clone() for tensor in trainer.model.state_dict().values()],
    }


@pytest.mark.multiprocess
def test_two_processes_race_identically(tmp_path):
    rank0, rank1 = run_distributed(_distributed_worker, str(tmp_path), world_size=2)
    assert (rank0["rank"], rank1["rank"]) == (0, 1)
    assert rank0["history"] == rank1["history"]  # arms, probe losses (all-reduced), winners: bit for bit
    assert sum(record.get("kept", False) for record in rank0["history"]) >= 1  # the opening race (and confirmation)
    assert all(torch.equal(a, b) for a, b in zip(rank0["weights"], rank1["weights"]))


@pytest.mark.parametrize(
    "settings",
    [{}, {"cooldown": 0}, {"exploration": 0.1}, {"races": 2}, {"judge": "endpoint"}, {"look_ahead": 9}],
)
def test_max_steps_for_is_the_shortest_run_whose_plan_keeps_the_steps_asked_for(settings):
    for train_steps in (1, 7, 60, 150, 250, 600, 2345):
        policy = RacingPolicy(7, **settings)
        max_steps = policy.max_steps_for(train_steps, list(range(1, 8)))
        assert policy.plan is None  # asking plans nothing on the policy itself

        def kept(total_steps):
            plan = RacingPolicy(7, **settings).plan_budget(total_steps, list(range(1, 8)))
            assert plan["kept_steps"] + plan["discarded_steps"] == total_steps
            return plan["kept_steps"]

        assert kept(max_steps) >= train_steps
        assert all(kept(total) < train_steps for total in range(train_steps, max_steps)), (train_steps, max_steps)


def test_the_plan_counts_the_steps_of_the_branches_it_throws_away():
    plan = RacingPolicy(7).plan_budget(300, list(range(1, 8)))
    # 6 opening branches of 5 steps and the confirmation race's loser (30); the cooldown's steps are all kept
    assert plan["discarded_steps"] == 6 * 5 + 30 and plan["kept_steps"] == 300 - 60
    plan = RacingPolicy(7, cooldown=0).plan_budget(300, list(range(1, 8)))
    # and without a cooldown 2 closing branches of 15
    assert plan["discarded_steps"] == 6 * 5 + 30 + 2 * 15 and plan["kept_steps"] == 300 - 90
    assert RacingPolicy(7, cooldown=0).max_steps_for(210, list(range(1, 8))) <= 300


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "100"], ids=["zero", "negative", "float", "bool", "str"])
def test_max_steps_for_rejects_bad_input(bad):
    with pytest.raises(ValueError, match="train_steps must be a positive int"):
        RacingPolicy(3).max_steps_for(bad, [1, 2, 3])
    with pytest.raises(ValueError, match="train_steps must be a positive int"):
        BanditLRCallback([0.1, 1.0], probe_dataset=PROBE).max_steps_for(bad)


def test_max_steps_for_a_bandit_keeps_every_step_unless_it_backtracks():
    with pytest.raises(ValueError, match="expected 3 arm values"):
        RacingPolicy(3).max_steps_for(100, [1, 2])
    assert BanditLRCallback([0.1, 1.0], bandit="ducb", probe_dataset=PROBE).max_steps_for(100) == 100
    with pytest.raises(ValueError, match="backtrack=True"):
        BanditLRCallback([0.1, 1.0], bandit="ducb", backtrack=True, probe_dataset=PROBE).max_steps_for(100)


@pytest.mark.parametrize("settings", [{}, {"cooldown": 0}], ids=["cooldown", "closing-race"])
def test_a_run_of_max_steps_for_t_keeps_t_steps_of_trajectory(tmp_path, settings):
    bandit = BanditLRCallback([0.03, 0.1, 0.3], probe_dataset=PROBE, bandit_kwargs=settings, seed=0)
    max_steps = bandit.max_steps_for(50)
    assert max_steps > 50
    make_trainer(tmp_path, bandit, max_steps=max_steps).train()
    history, plan = bandit.history, bandit.policy.plan
    assert not any(record["backtracked"] for record in history)  # nothing undone: only races discard steps
    ends = [record["global_step"] for record in history]
    assert [record["steps"] for record in history] == [b - a for a, b in zip([0, *ends], ends)]
    assert ends[-1] == max_steps
    last_race = [record for record in history if record.get("branch") is not None][-3:]
    # a closing race at an end of the grid has one branch fewer than planned: its steps go to the kept trajectory
    at_an_end = plan["races"] and [record["branch"] for record in last_race] != [0, 1, 2]
    extra = plan["closing_look_ahead"] if at_an_end else 0
    discarded = sum(record["steps"] for record in history if record.get("kept") is False)
    assert discarded == plan["discarded_steps"] - extra == max_steps - 50 - extra
    assert bandit.kept_steps == max_steps - discarded == 50 + extra


def test_the_cooldown_decays_the_rate_linearly_over_the_last_share_of_the_run():
    policy = RacingPolicy(3)
    policy.plan_budget(100, [0.1, 0.3, 1.0])
    factors = [policy.lr_factor(step) for step in range(100)]
    assert factors[:80] == [1.0] * 80
    assert factors[80:] == pytest.approx([(100 - step) / 20 for step in range(80, 100)])  # 1 down to 1/20
    assert policy.lr_factor(130) == pytest.approx(1 / 20)  # past the plan (a longer resumed run): stays at the end
    no_cooldown = RacingPolicy(3, cooldown=0)
    no_cooldown.plan_budget(100, [0.1, 0.3, 1.0])
    assert {no_cooldown.lr_factor(step) for step in range(120)} == {1.0}
    for bad in (-0.1, 1.0, True, "0.2", float("nan")):
        with pytest.raises(ValueError, match="cooldown must be a share"):
            RacingPolicy(3, cooldown=bad)
    # a run resumed from a checkpoint written before the cooldown existed keeps its saved plan: no cooldown
    state = json.loads(json.dumps(no_cooldown.state_dict()))
    state["plan"].pop("cooldown_steps")
    resumed = RacingPolicy(3)  # the default settings, as rebuilt from that checkpoint's arguments
    resumed.load_state_dict(state)
    assert resumed.lr_factor(99) == 1.0 and resumed.plan["races"] == 1


def test_in_a_trainer_the_cooldown_scales_the_played_arm_over_the_last_steps(tmp_path):
    bandit = BanditLRCallback([0.01, 0.1, 0.5], probe_dataset=PROBE, seed=0)
    recorder = RecordLearningRates(bandit)
    make_trainer(tmp_path, bandit, recorder, max_steps=40).train()
    assert bandit.policy.plan["cooldown_steps"] == 8
    for step, lrs, arm in recorder.steps:  # the step about to be taken, 1-based
        factor = min(1.0, (40 - (step - 1)) / 8)
        assert lrs == [pytest.approx(arm * factor, rel=1e-12)] * len(lrs), step
    assert recorder.steps[-1][1][0] == pytest.approx(recorder.steps[-1][2] / 8)
    assert [record["lr"] for record in bandit.history][-1] == pytest.approx(recorder.steps[-1][1][0])


def test_a_stalled_exploitation_stretch_steps_the_rate_down_before_the_cooldown_only():
    policy = RacingPolicy(3)
    policy.plan_budget(100, [0.1, 0.3, 1.0])  # the rate decays from the 82nd step on (factor 19/20)
    assert policy.steps_down_after(0.0, 50) and policy.steps_down_after(-0.2, 80)  # no progress: step down
    assert not policy.steps_down_after(1e-6, 50)  # some progress: keep the rate
    assert not policy.steps_down_after(-0.2, 81)  # the cooldown anneals from here
    assert not policy.steps_down_after(None, 50)  # no probe loss at the stretch's start (a resumed run)
    disabled = RacingPolicy(3, stall_step_down=False)
    disabled.plan_budget(100, [0.1, 0.3, 1.0])
    assert not disabled.steps_down_after(-0.2, 50)
    assert disabled.config()["stall_step_down"] is False
    with pytest.raises(ValueError, match="stall_step_down must be a bool"):
        RacingPolicy(3, stall_step_down=1)


def test_in_a_trainer_a_stretch_that_does_not_lower_the_probe_loss_moves_the_rate_one_notch_down(tmp_path):
    arms = [0.05, 0.2, 1.0, 5.0]
    exploitation = {}
    for stall_step_down in (True, False):
        bandit = BanditLRCallback(
            arms, probe_dataset=PROBE, seed=0, bandit_kwargs={"stall_step_down": stall_step_down}
        )
        make_trainer(tmp_path / str(stall_step_down), bandit, max_steps=100).train()
        # with the cooldown there is no closing race: after the confirmation race every episode exploits
        records = [record for record in bandit.history if record.get("branch") is None]
        exploitation[stall_step_down] = (bandit.policy, records)
    policy, records = exploitation[True]
    stalls = 0
    for record, following in zip(records, records[1:]):
        stalled = record["reward"] <= 0 and policy.lr_factor(record["global_step"]) == 1.0
        stalls += stalled and not record["backtracked"]
        lower = max([arm for arm in arms if arm < record["arm_value"]], default=record["arm_value"])
        expected = lower if stalled or record["backtracked"] else record["arm_value"]
        assert following["arm_value"] == expected, (record, following)
        assert following["start_loss"] == (record["start_loss"] if record["backtracked"] else record["end_loss"])
    assert stalls >= 2  # this run stalls twice before its cooldown (kept, not undone)
    policy, records = exploitation[False]
    for record, following in zip(records, records[1:]):  # only a diverging stretch (undone) moves the rate
        assert following["arm_value"] == record["arm_value"] or record["backtracked"]
