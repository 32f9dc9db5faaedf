"""Racing: compare learning rates from the same starting point, keep the winner, and spend a budget-sized share
of the run doing so. The default selector of :class:`~hf_eff.callbacks.bandit_lr.BanditLRCallback`.

Why not a bandit over per-episode rewards (the paper's D-UCB)? Measured on hf_eff's benchmark, two things go wrong:

- rewards of episodes played at different times are not comparable (progress per episode shrinks by orders of
  magnitude over a run), and a small rate looks good at once because it damps gradient noise, so the statistics
  drift toward small rates long before that is right (short-horizon bias);
- exploration does not know the run's length: on a short run the bandit is still trying arms when it ends.

Racing answers both. A *race* plays each of its candidate rates for a few steps from one snapshot (the
episode-start snapshot backtracking already keeps) and keeps the best branch, so every comparison is between rates
that started from the same weights at the same time, and the winner has already made its steps of progress.

How a branch is judged matters as much. Its probe loss at its end carries the rate's noise floor: with SGD at a
constant rate the weights jitter around the path they make progress along, by an amount that grows with the rate,
so over a short branch a smaller rate looks better at once although a larger one has travelled further (measured:
0.3 beat 1.0 this way where 1.0 is the best fixed rate). With ``judge="tail"`` (default) the *progress* races are
judged by the probe loss of the branch's **tail-averaged weights**, the mean of its weights over its last half,
which removes the jitter and measures where the branch has got to (for a quadratic at a constant rate the average's
loss loses the O(lr) noise term and keeps the progress term); the branch kept and continued is still the live one,
and the average costs one probe evaluation per branch, no steps (the live end of a discarded opening branch is not
evaluated at all). Averages can flatter, though: a too-large rate whose live weights bounce can still average well
(measured with AdamW), so a challenger that would change the opening's choice must be better on *both* its averaged
and its live loss. The *closing* races are judged by the live loss at the branch's end: that is what the run ends
with. ``judge="endpoint"`` judges every branch by its end (hf_eff's previous default).

A race is only as far-sighted as its branches are long, so races are placed where their horizon matches the
decision they make. The run is laid out from its length ``T`` (``max_steps``), the number of arms ``K`` and
``exploration``, the share of the steps spent on branches that are thrown away (half for the opening race, half for
the closing ones):

- an *opening race* over all arms with short branches (``look_ahead = exploration * T / (2 (K - 1))`` steps, at
  least ``DEFAULT_COOLDOWN = 0.2  # share of the run over which the rate decays linearly to 0 at its end
MIN_TAIL_LOOK_AHEAD = 4`` when judged by the tail, so that the average spans 2+ steps): far from a
  minimum, progress dominates and a short look-ahead finds the largest rate that trains stably;
- a *confirmation race* of the winner against a neighbour over ``check_steps``. Judged by the tail: the neighbour
  (smaller or larger) that scored better in the opening race, which takes over only if it is better both on its
  averaged and its live loss (a short opening race from the initial weights can misrank neighbours). Judged by the
  endpoint: the next smaller rate, which takes over only if the winner's loss rose (a too-large rate can look best
  over a few steps and blow up later);
- *exploitation* of the winner for the rest of the run, in episodes of ``check_steps = max(T / 10, closing, 2
  look_ahead)``; an episode whose probe loss rose by more than ``DIVERGENCE`` of the progress made since the start
  is undone by the callback and the rate steps one grid notch down (no races here: measured, mid-run races of short
  branches judged by their end move to smaller rates too early, because a smaller rate lowers the loss at once).
  An episode that did not lower the probe loss at all steps down too, but is kept (``stall_step_down``, default):
  a rate that is too large for a long run stops making progress long before a smaller one would (with AdamW the
  races, a few dozen steps long, prefer 0.03 where 0.001-0.01 win over thousands of steps), and a stall is the
  first thing the run can see of it. It is ReduceLROnPlateau with a patience of one episode. Measured on
  ``hf-eff bench bandit_lr`` with AdamW on the digits tasks run 4x longer: MLP 1.51x -> 0.97x, CNN 1.61x -> 1.22x
  the best fixed rate; the price is up to 0.07x on the shorter runs, where an early stall can be probe noise (one
  seed of a 200-step run went from 1.0 to 0.1 this way: 1.6x). Judging the stall by the stretch's tail-averaged
  weights (as the races are judged) removes that price and most of the gain (MLP 4x AdamW 1.24x; a too-large
  rate's average keeps improving while its live weights bounce), and so does a patience of two stretches (1.42x);
  stepping down only on a rise beyond one standard error of the paired per-example probe losses keeps the price
  (0.71x vs 0.68x without the rule) and loses gain (MLP 4x AdamW 1.12x, CNN 4x AdamW 1.31x);
- a *cooldown* (default): over the run's last ``cooldown * T`` steps (``cooldown=0.2``) the played rate is scaled
  down linearly to ``1 / (cooldown * T)`` of itself at the last step, the decay phase of a warmup-stable-decay
  schedule. Near the end of a run a smaller rate pays (it removes the noise floor of the rate), and annealing is how
  to take that gain: measured on ``hf-eff bench bandit_lr`` (5 seeds), the cooldown beat the closing race (below),
  which steps at most one grid notch down, late, and throws two branches away, on every task and optimizer;
- with ``cooldown=0``, ``races`` *closing races* (default 1) near the end instead, between the current arm and its
  two neighbours on the sorted grid (the current arm first, so that a tie keeps it), each with branches of
  ``closing = exploration * T / (4 races)`` steps followed by ``closing`` steps of exploitation: the look-ahead
  equals the horizon left, so the immediate gain of a smaller rate, the bias of the endpoint, is then exactly what
  the run needs (hf_eff's previous default).

E.g. ``T = 300, K = 7``: an opening race of 7 x 5 steps, a confirmation race of 2 x 30, and 205 steps of
exploitation of which the last 60 cool down; 60 steps (20%) discarded (``exploration / 2`` budgets the opening race,
the confirmation race adds one ``check_steps`` branch). Without the cooldown: 145 steps of exploitation, a closing
race of 3 x 15 steps and 15 final steps; 90 steps (30%) discarded. Racing happens inside the run's ``max_steps`` (a
discarded branch consumes Trainer steps and batches), so a run costs one run plus the probe evaluations, never more,
and keeps ``T`` minus the discarded steps of training (the plan's ``"kept_steps"``); :meth:`RacingPolicy.max_steps_for`
gives the ``max_steps`` that keeps a chosen number of steps instead. The cooldown follows the global step (the last
steps of ``max_steps``), so it applies as planned to a run of ``max_steps_for(T)`` too.

Known limitation (measured on ``hf-eff bench bandit_lr``): the rate is decided early, from branches far shorter
than the run. Where the ranking of rates from the initial weights flips late and a rate's early steps have lasting
effects, the race picks a rate that is too large; the stall step-down recovers part of it on long runs, and the
cooldown does not: with AdamW on the byte LM (the ranking flips after about a third of the run) racing ends 1.16x
above the best fixed rate of its grid, and on the 600-step digits CNN about 1.2x. With SGD it is within 1.07x on
every task.

These are hf_eff's choices, not the paper's (whose settings are unverified); the benchmark
(``hf-eff bench bandit_lr``) is where they earned their place.
"""

import copy
import math
from collections.abc import Sequence
from typing import Any

from hf_eff.callbacks.bandit_lr.policies import BanditPolicy, _check_positive, register_bandit


__all__ = ["RacingPolicy"]

OPENING, CONFIRM, NEIGHBOURS = "opening", "confirm", "neighbours"
TAIL, ENDPOINT = "tail", "endpoint"  # how race branches are judged (see RacingPolicy's judge)
JUDGES = (TAIL, ENDPOINT)
# what the callback measures to score the running branch (RacingPolicy.branch_score)
AVERAGED_WEIGHTS, BOTH, END_LOSS = "averaged_weights", "averaged_weights_and_end_loss", "end_loss"
DEFAULT_COOLDOWN = 0.2  # share of the run over which the rate decays linearly to 0 at its end
MIN_TAIL_LOOK_AHEAD = 4  # a derived opening look-ahead is at least this long, so that its last half averages 2+ steps
# an exploitation episode diverged if its probe loss rose by more than this share of the progress made since the
# run started: early on any clear rise is divergence, late in training the rate's noise is not
DIVERGENCE = 0.25


class RacingPolicy(BanditPolicy):
    """Race all arms from a shared snapshot, exploit the winner, and cool its rate down at the end.

    The callback plans the run with :meth:`plan_budget` when training starts (it knows ``max_steps``), asks
    :meth:`select` for the arm of each episode and :meth:`episode_steps` for its length, and reports each episode's
    reward (relative decrease of the probe loss from the episode start) with :meth:`update`; :attr:`branch_score`
    says which probe loss scores the running race branch. While :attr:`racing`
    is true, every episode after the first of a race must start from the race's snapshot; when a race ends,
    :attr:`last_winner` names the branch to keep.

    Args:
        num_arms: the number of learning rates.
        exploration: the budget of discarded race branches as a share of the run's steps (default 0.2): half for
            the opening race, half for closing races (none by default); the confirmation race adds one branch.
        look_ahead: steps per branch of the opening race; ``None`` derives it from the budget.
        races: closing races (default ``None``: none with a cooldown, else 1; fewer if the run is too short).
        confirm: race the opening winner against a neighbour over ``check_steps`` before exploiting it.
        judge: ``"tail"`` (default) judges the opening and confirmation races by the probe loss of each branch's
            tail-averaged weights (the confirmation race also by its live loss) and the closing races by their
            end; ``"endpoint"`` judges every branch by the probe loss at its end (the previous default).
        cooldown: the share of the run, at its end, over which the played rate decays linearly to nearly 0
            (default 0.2; 0 turns it off and restores the closing race). It scales the rate only with the
            callback's ``mode="absolute"``: in ``mode="multiplier"`` your schedule shapes the rate [hf_eff choice].
        stall_step_down: an exploitation stretch that did not lower the probe loss (before the cooldown) moves the
            rate one grid notch down, keeping the stretch (default ``True``; ``False``: only a diverging stretch
            steps down, and it is undone) [hf_eff choice].
        seed: unused (racing is deterministic), kept for the common interface.
    """

    name = "race"
    _state_fields = ("plan", "current", "race", "races_done", "last_winner", "stretch_left")
    _per_arm_fields = ()

    def __init__(
        self,
        num_arms: int,
        *,
        exploration: float = 0.2,
        look_ahead: int | None = None,
        races: int | None = None,
        confirm: bool = True,
        judge: str = TAIL,
        cooldown: float = DEFAULT_COOLDOWN,
        stall_step_down: bool = True,
        seed: int = 0,
    ):
        super().__init__(num_arms, seed=seed)
        if not isinstance(stall_step_down, bool):
            raise ValueError(f"stall_step_down must be a bool, got {stall_step_down!r}")
        self.stall_step_down = stall_step_down
        if isinstance(cooldown, bool) or not isinstance(cooldown, (int, float)) or not 0 <= cooldown < 1:
            raise ValueError(f"cooldown must be a share of the run's steps in [0, 1), got {cooldown!r}")
        self.cooldown = float(cooldown)
        _check_positive("exploration", exploration)
        if exploration >= 1:
            raise ValueError(f"exploration must be in (0, 1), got {exploration!r}")
        if look_ahead is not None and (
            not isinstance(look_ahead, int) or isinstance(look_ahead, bool) or look_ahead < 1
        ):
            raise ValueError(f"look_ahead must be an int >= 1 or None, got {look_ahead!r}")
        if races is not None and (not isinstance(races, int) or isinstance(races, bool) or races < 0):
            raise ValueError(f"races must be an int >= 0 or None, got {races!r}")
        if judge not in JUDGES:
            raise ValueError(f"judge must be one of {JUDGES}, got {judge!r}")
        self.judge = judge
        self.exploration, self.look_ahead, self.races, self.confirm = (
            float(exploration),
            look_ahead,
            races,
            bool(confirm),
        )
        self.plan: dict[str, Any] | None = None  # set by plan_budget
        self.current: int | None = None  # the arm being exploited (None before the opening race ends)
        self.race: dict[str, Any] | None = None  # {"kind", "arms", "rewards"} while racing
        self.races_done = 0
        self.last_winner: int | None = None
        self.stretch_left = 0  # steps left in the current exploitation stretch

    def config(self) -> dict[str, Any]:
        return {
            "exploration": self.exploration,
            "look_ahead": self.look_ahead,
            "races": self.races,
            "confirm": self.confirm,
            "judge": self.judge,
            "cooldown": self.cooldown,
            "stall_step_down": self.stall_step_down,
        }

    # -- planning ----------------------------------------------------------------------------------------------
    def plan_budget(self, total_steps: int, arm_values: list[float], look_ahead: int | None = None) -> dict[str, Any]:
        """Lay the run out for ``total_steps`` optimizer steps over arms with these values (for their order);
        ``look_ahead`` (the opening race's branch length) is used when the policy was built without one. Does
        nothing if a plan exists (a resumed run keeps the original plan). Returns the plan."""
        if self.plan is not None:
            return self.plan
        if len(arm_values) != self.num_arms:
            raise ValueError(f"expected {self.num_arms} arm values, got {len(arm_values)}")
        if not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"total_steps must be a positive int (the run's max_steps), got {total_steps!r}")
        budget = self.exploration * total_steps / 2  # discarded steps for the opening race, and for the closing ones
        derived = max(1, math.floor(budget / max(self.num_arms - 1, 1)))
        if self.judge == TAIL:
            derived = max(derived, MIN_TAIL_LOOK_AHEAD)
        look_ahead = self.look_ahead or look_ahead or derived
        look_ahead = max(1, min(look_ahead, total_steps // self.num_arms))  # the opening race fits in the run
        races = (0 if self.cooldown else 1) if self.races is None else self.races  # the cooldown anneals instead
        closing = math.floor(budget / (2 * races)) if races else 0  # 2 discarded branches per closing race
        left = total_steps - self.num_arms * look_ahead
        while races and (closing < 1 or 4 * closing * races >= left):  # too short a run for that many races
            races -= 1
            closing = math.floor(budget / (2 * races)) if races else 0
        if self.num_arms == 1:
            races = closing = 0
        check = max(1, closing, 2 * look_ahead, total_steps // 10)
        # the confirmation race (opening winner vs the next smaller rate, 2 branches of `check` steps) if it fits
        confirm = check if self.confirm and self.num_arms > 1 and left - 4 * closing * races > 3 * check else 0
        order = sorted(range(self.num_arms), key=lambda arm: arm_values[arm])
        # exploit the opening winner, then per closing race: 3 branches of `closing` steps, exploit `closing` steps
        exploit_steps = [max(1, left - 4 * closing * races - 2 * confirm)] + [closing] * races
        # thrown away: all opening branches but the winner's, the confirmation race's loser, two closing branches per
        # closing race (one at an end of the grid, which leaves the run more kept steps than planned)
        discarded = (self.num_arms - 1) * look_ahead + confirm + 2 * closing * races
        self.plan = {
            "total_steps": total_steps,
            "look_ahead": look_ahead,
            "races": races,
            "closing_look_ahead": closing,
            "confirm_look_ahead": confirm,
            "exploit_steps": exploit_steps,
            "check_steps": check,  # exploitation episodes, after each of which the probe loss is checked
            "order": order,
            "discarded_steps": discarded,
            "kept_steps": total_steps - discarded,  # the trajectory the run ends with
            "cooldown_steps": round(self.cooldown * total_steps),  # the last steps, where the rate decays to 0
        }
        self.race = {"kind": OPENING, "arms": list(order), "rewards": []}
        return self.plan

    def max_steps_for(self, train_steps: int, arm_values: Sequence[float], look_ahead: int | None = None) -> int:
        """The ``max_steps`` whose plan keeps at least ``train_steps`` steps of trajectory: the smallest such run.

        Races happen inside ``max_steps``, so a run of ``T`` steps ends with ``T`` minus the discarded branches'
        steps of training (about 70% of ``T`` with the default ``exploration``), while a fixed-rate run of ``T``
        steps keeps all ``T``. To compare with (or replace) a fixed-rate run of ``train_steps`` steps, set
        ``max_steps`` to this, and the exploration is paid on top of the training. The plan is the one
        :meth:`plan_budget` makes (this policy's settings, ``look_ahead`` as there); its ``"kept_steps"`` is exact
        unless a closing race is at an end of the grid (fewer branches: more steps kept) or an exploitation stretch
        diverges and is undone (those steps are lost: fewer kept). This policy's own plan is left as it is.
        """
        if not isinstance(train_steps, int) or isinstance(train_steps, bool) or train_steps < 1:
            raise ValueError(f"train_steps must be a positive int (steps of kept trajectory), got {train_steps!r}")
        if len(arm_values) != self.num_arms:
            raise ValueError(f"expected {self.num_arms} arm values, got {len(arm_values)}")
        # the opening race's discarded branches only grow with the run, so no run shorter than this keeps enough
        total = train_steps + self._plan_for(train_steps, arm_values, look_ahead)["look_ahead"] * (self.num_arms - 1)
        while self._plan_for(total, arm_values, look_ahead)["kept_steps"] < train_steps:
            total += 1
        return total

    def _plan_for(self, total_steps: int, arm_values: Sequence[float], look_ahead: int | None) -> dict[str, Any]:
        """The plan :meth:`plan_budget` would make for ``total_steps``, made on a fresh copy of this policy."""
        fresh = copy.copy(self)
        fresh.plan = fresh.race = None
        return fresh.plan_budget(total_steps, list(arm_values), look_ahead)

    # -- the interface -----------------------------------------------------------------------------------------
    @property
    def racing(self) -> bool:
        """Whether the next episode is a race branch."""
        return self.race is not None

    @property
    def branch_score(self) -> str | None:
        """What scores the running race branch (``None`` outside a race): ``"averaged_weights"``, the probe loss of
        the mean of the weights over the branch's last half (opening races); ``"averaged_weights_and_end_loss"``,
        that and the probe loss at its end (confirmation races); ``"end_loss"``, the probe loss at its end (closing
        races, ``judge="endpoint"``, or a branch too short to average over)."""
        if self.race is None:
            return None
        if self.judge == ENDPOINT or self.race["kind"] == NEIGHBOURS or self.episode_steps() < MIN_TAIL_LOOK_AHEAD:
            return END_LOSS
        return BOTH if self.race["kind"] == CONFIRM else AVERAGED_WEIGHTS

    @property
    def branch(self) -> int:
        """The index of the next race branch within its race (0 for the first; meaningless when not racing)."""
        return len(self.race["rewards"]) if self.race is not None else 0

    def episode_steps(self) -> int:
        """The length of the next episode: ``look_ahead`` for a race branch, else the exploitation stretch."""
        self._check_planned()
        if self.race is not None:
            key = {OPENING: "look_ahead", CONFIRM: "confirm_look_ahead", NEIGHBOURS: "closing_look_ahead"}
            return self.plan[key[self.race["kind"]]]
        return min(self.plan["check_steps"], self.stretch_left)

    def select(self) -> int:
        self._check_planned()
        if self.race is not None:
            return self.race["arms"][len(self.race["rewards"])]
        return self.current

    def update(self, arm: int, reward: float, end_reward: float | None = None) -> None:
        """Report an episode's reward; a confirmation-race branch judged by its tail also reports ``end_reward``,
        the relative decrease of its probe loss at its end (``branch_score == "averaged_weights_and_end_loss"``)."""
        reward = self._check_update(arm, reward)
        self._check_planned()
        if self.race is None:  # an exploitation episode ended
            self.stretch_left -= self.episode_steps()
            if self.stretch_left > 0:
                return
            if self.races_done < self.plan["races"]:  # the stretch is over: race the neighbours
                self.race = {"kind": NEIGHBOURS, "arms": self._neighbours(self.current), "rewards": []}
            self.stretch_left = self.plan["check_steps"]  # past the plan (max_steps changed?): keep checking
            return
        if arm != self.select():
            raise ValueError(f"the race expected a reward for arm {self.select()}, got one for arm {arm}")
        if self.branch_score == BOTH:
            if end_reward is None:
                raise ValueError("a confirmation race judged by the tail needs the branch's end_reward too")
            self.race.setdefault("end_rewards", []).append(self._check_update(arm, end_reward))
        self.race["rewards"].append(reward)
        if len(self.race["rewards"]) < len(self.race["arms"]):
            return
        rewards = self.race["rewards"]
        best = max(range(len(rewards)), key=lambda i: (rewards[i], -i))  # ties: the earlier branch
        if self.race["kind"] == CONFIRM and "end_rewards" in self.race:
            # the challenger takes over only if it is better both ways: its averaged weights (progress) and its live
            # end (what training continues from; a too-large rate can average well while the live weights bounce)
            ends = self.race["end_rewards"]
            best = 1 if rewards[1] > rewards[0] and ends[1] > ends[0] else 0
        elif self.race["kind"] == CONFIRM and rewards[0] > 0:
            best = 0  # the opening winner still trains stably: keep it (a short race favours the smaller rate)
        self.current = self.last_winner = self.race["arms"][best]
        self.stretch_left = self.plan["exploit_steps"][self.races_done + (self.race["kind"] == NEIGHBOURS)]
        confirm = self.plan["confirm_look_ahead"]
        if self.race["kind"] == OPENING and confirm:
            rival = self._rival(self.current, rewards)
            if rival is not None:  # confirm over a longer look-ahead
                self.race = {"kind": CONFIRM, "arms": [self.current, rival], "rewards": []}
                return
            self.stretch_left += 2 * confirm  # the smallest rate won: nothing to confirm it against
        if self.race["kind"] == NEIGHBOURS:
            self.races_done += 1
            # at an end of the grid a race has 2 branches, not the 3 planned: the steps saved go to exploitation
            self.stretch_left += (3 - len(self.race["arms"])) * self.plan["closing_look_ahead"]
        self.race = None

    def lr_factor(self, step: int) -> float:
        """The factor on the played arm's rate for the optimizer step taken after ``step`` completed steps: 1, then
        over the plan's last ``cooldown_steps`` steps linearly down to ``1 / cooldown_steps`` at its last step (a
        run that goes on past its plan stays there)."""
        self._check_planned()
        cooldown = self.plan.get("cooldown_steps", 0)  # absent from plans of older hf_eff versions
        return min(1.0, max(self.plan["total_steps"] - step, 1) / cooldown) if cooldown else 1.0

    def steps_down_after(self, reward: float | None, step: int) -> bool:
        """Whether an exploitation stretch that ended after ``step`` completed steps with this ``reward`` (relative
        decrease of the probe loss over the stretch) moves the rate down: with ``stall_step_down``, when the probe
        loss did not decrease and the cooldown has not begun. (The callback steps down after a diverging stretch
        in any case.)"""
        self._check_planned()
        return self.stall_step_down and reward is not None and not reward > 0 and self.lr_factor(step) == 1.0

    def step_down(self) -> None:
        """Exploit the next smaller rate of the grid (the callback undid an episode whose loss diverged)."""
        order = self.plan["order"]
        self.current = order[max(order.index(self.current), 1) - 1]

    def best_branch(self) -> int | None:
        """Index (within the running race) of the best branch so far, ``None`` outside a race or before any."""
        if self.race is None or not self.race["rewards"]:
            return None
        rewards = self.race["rewards"]
        return max(range(len(rewards)), key=lambda i: (rewards[i], -i))

    def arm_statistics(self) -> list[dict[str, float]]:
        stats = [{} for _ in range(self.num_arms)]
        if self.race is not None:
            for arm, reward in zip(self.race["arms"], self.race["rewards"]):
                stats[arm]["race_reward"] = reward
        return stats

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if self.plan is not None and sorted(self.plan.get("order", [])) != list(range(self.num_arms)):
            raise ValueError(f"saved race plan does not cover the {self.num_arms} arms: {self.plan!r:.200}")

    # -- helpers -----------------------------------------------------------------------------------------------
    def _rival(self, winner: int, opening_rewards: list[float]) -> int | None:
        """The confirmation race's challenger: judged by the tail, the opening winner's neighbour that scored better
        in the opening race (the smaller one on a tie); judged by the endpoint, the next smaller rate."""
        order = self.plan["order"]
        position = order.index(winner)
        if self.judge == ENDPOINT:
            return order[position - 1] if position > 0 else None
        scores = dict(zip(order, opening_rewards))  # the opening race plays the arms in order of value
        near = [order[p] for p in (position - 1, position + 1) if 0 <= p < len(order)]
        return max(near, key=lambda arm: (scores[arm], -order.index(arm)), default=None)

    def _neighbours(self, arm: int) -> list[int]:
        order = self.plan["order"]
        position = order.index(arm)
        return [arm, *(order[p] for p in (position - 1, position + 1) if 0 <= p < len(order))]

    def _check_planned(self) -> None:
        if self.plan is None:
            raise ValueError("RacingPolicy has no plan yet: call plan_budget(total_steps, arm_values) first")


register_bandit(RacingPolicy)
