"""The hard budget on symbolic checks (edge/checker.py, edge/check_worker.py), with real worker processes.

To prove the budget holds on its own, the workers here run with the size estimate's bounds raised
(``TUTOR_MAX_MATH_*`` in their environment), so the listed bombs reach sympy — and the kernel's CPU limit
ends them.
"""

import threading
import time

import pytest

from tutor_cluster.edge import maths
from tutor_cluster.edge.checker import CheckRefused, ProcessChecker

UNBOUNDED = {"TUTOR_MAX_MATH_DEGREE": "1000000", "TUTOR_MAX_MATH_TERMS": "10000000000000",
             "TUTOR_MAX_MATH_DIGITS": "100000000"}


@pytest.fixture
def unbounded():
    checker = ProcessChecker(workers=2, cpu_s=1, wall_s=60, memory_mb=768, env=UNBOUNDED)
    checker.wait_ready()
    yield checker
    checker.close()


def test_answers_are_graded_by_the_workers(unbounded) -> None:
    g = unbounded.grade("2 6/8".replace(" ", "+"), "7/2", misconceptions=("11/4", "3"))
    assert not g.verdict.correct and g.misconceptions == (0,)
    assert unbounded.grade("x = 2", "x = 2", require_solved=True).verdict.correct
    with pytest.raises(maths.MathInputError):
        unbounded.grade("3 ++ )", "1")


@pytest.mark.parametrize("bomb", ["(a+b+c+d+e+f+g+h)^64", "((x+1)^64)^64", "(((x+1)^64)^64)^64"])
def test_a_bomb_past_the_estimate_is_ended_by_the_cpu_limit_and_the_worker_replaced(unbounded, bomb) -> None:
    cpu = time.process_time()
    with pytest.raises((CheckRefused, maths.MathLimitError)) as exc:
        unbounded.grade(bomb, "1")
    assert not getattr(exc.value, "busy", False)
    assert time.process_time() - cpu < 1  # the caller spent nothing: the work (and its end) was the worker's
    assert unbounded.grade("1/2 + 1/4", "3/4").verdict.correct  # the pool still answers
    if isinstance(exc.value, CheckRefused):
        assert unbounded.replaced >= 1


def test_no_free_worker_within_the_wall_bound_is_busy_not_a_hang() -> None:
    checker = ProcessChecker(workers=1, cpu_s=30, wall_s=1.0, env=UNBOUNDED)
    checker.wait_ready()
    try:
        hog = threading.Thread(target=lambda: pytest.raises(CheckRefused, checker.grade, "(a+b+c+d+e+f+g+h)^64", "1"))
        hog.start()
        time.sleep(0.2)
        t0 = time.monotonic()
        with pytest.raises(CheckRefused) as exc:
            checker.grade("3/4", "3/4")
        assert exc.value.busy and time.monotonic() - t0 < 30  # refused at the wall bound, not after the hog
        hog.join()
    finally:
        checker.close()
