"""Next-exercise policies, registered by name (``learner.next_exercise_policy``)."""

from __future__ import annotations

from typing import Callable

from pydantic import BaseModel

from tutor_cluster.config.edge import Exercise, ExerciseSet
from tutor_cluster.config.learner import MemoryPolicy
from tutor_cluster.learner.context import LearnerContext


class Recommendation(BaseModel):
    exercise_id: str
    skill: str
    prompt: str
    mastery: float
    reason: str


NextExercisePolicy = Callable[[LearnerContext, ExerciseSet, MemoryPolicy], Recommendation | None]
_POLICIES: dict[str, NextExercisePolicy] = {}


def register(name: str) -> Callable[[NextExercisePolicy], NextExercisePolicy]:
    def wrap(fn: NextExercisePolicy) -> NextExercisePolicy:
        _POLICIES[name] = fn
        return fn

    return wrap


def registered() -> list[str]:
    return sorted(_POLICIES)


def get(name: str) -> NextExercisePolicy:
    try:
        return _POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown next-exercise policy {name!r}; registered: {', '.join(registered())}") from None


@register("lowest_mastery")
def lowest_mastery(ctx: LearnerContext, exercises: ExerciseSet, policy: MemoryPolicy) -> Recommendation | None:
    """The unmastered skill with the lowest mastery (unseen skills count at their prior); within it, the
    exercises in turn by how often the skill was attempted."""
    best: tuple[float, int, str] | None = None
    for order, skill in enumerate(exercises.skills):
        if not exercises.for_skill(skill.id):
            continue
        state = ctx.skills.get(skill.id)
        mastery = state.mastery if state else policy.params(skill.id).prior
        if mastery >= policy.mastery_threshold:
            continue
        if best is None or (mastery, order) < best[:2]:
            best = (mastery, order, skill.id)
    if best is None:
        return None
    mastery, _, skill_id = best
    options: list[Exercise] = exercises.for_skill(skill_id)
    state = ctx.skills.get(skill_id)
    pick = options[(state.attempts if state else 0) % len(options)]
    return Recommendation(exercise_id=pick.id, skill=skill_id, prompt=pick.prompt, mastery=mastery,
                          reason=f"lowest_mastery: {skill_id} has the lowest mastery ({mastery:.2f}) "
                                 f"below {policy.mastery_threshold:.2f}")
