"""Bayesian Knowledge Tracing: the online posterior update, EM fitting, and mastery.

Model (as pyBKT): hidden state known/unknown per skill; P(L0)=prior, P(T)=learn, P(F)=forget,
P(G)=guess, P(S)=slip. ``mastery`` is P(known) *before* the next attempt, exactly pyBKT's one-step
state prediction, so the two agree to floating-point precision (a test runs both).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tutor_cluster.config.learner import BKTParams

if TYPE_CHECKING:
    import numpy as np

# numpy is imported inside the EM functions only: learner-memory actors import this module for ``step``, and
# numpy is half of their import time, i.e. of how long an actor takes to come back after a crash.


State = tuple[float, float]
"""(P(unknown), P(known)) before an attempt. Both are carried, as pyBKT does: deriving P(unknown) as
1 - P(known) loses precision as mastery nears 1, and the two would drift apart."""


def initial(params: BKTParams) -> State:
    return (1 - params.prior, params.prior)


def step(state: State, correct: bool, params: BKTParams) -> State:
    """The state before the next attempt, given the state before this one and its outcome."""
    unknown, known = state
    g, s = params.guess, params.slip
    a0, a1 = (unknown * g, known * (1 - s)) if correct else (unknown * (1 - g), known * s)
    norm = a0 + a1
    a0, a1 = a0 / norm, a1 / norm
    return ((1 - params.learn) * a0 + params.forget * a1, params.learn * a0 + (1 - params.forget) * a1)


def trace(outcomes: Sequence[bool], params: BKTParams) -> list[float]:
    """P(known) before each attempt (the first is the prior)."""
    state = initial(params)
    out = [state[1]]
    for correct in list(outcomes)[:-1]:
        state = step(state, correct, params)
        out.append(state[1])
    return out


def p_correct(p_known: float, params: BKTParams) -> float:
    return p_known * (1 - params.slip) + (1 - p_known) * params.guess


def _forward_backward(seq: np.ndarray, prior: float, A: np.ndarray, E: np.ndarray) -> tuple[np.ndarray, ...]:
    """Scaled forward-backward for one sequence of 0/1 observations. Returns gamma, xi sums, loglik."""
    import numpy as np

    T = len(seq)
    alpha = np.empty((T, 2))
    scale = np.empty(T)
    pi = np.array([1 - prior, prior])
    alpha[0] = pi * E[:, seq[0]]
    scale[0] = alpha[0].sum()
    alpha[0] /= scale[0]
    for t in range(1, T):
        alpha[t] = (alpha[t - 1] @ A) * E[:, seq[t]]
        scale[t] = alpha[t].sum()
        alpha[t] /= scale[t]
    beta = np.ones((T, 2))
    for t in range(T - 2, -1, -1):
        beta[t] = (A @ (E[:, seq[t + 1]] * beta[t + 1])) / scale[t + 1]
    gamma = alpha * beta
    gamma /= gamma.sum(axis=1, keepdims=True)
    xi = np.zeros((2, 2))
    for t in range(T - 1):
        m = np.outer(alpha[t], E[:, seq[t + 1]] * beta[t + 1]) * A / scale[t + 1]
        xi += m
    return gamma, xi, np.log(scale).sum()


def fit(sequences: Sequence[Sequence[bool]], *, init: BKTParams | None = None, fit_forget: bool = False,
        max_iter: int = 100, tol: float = 1e-6) -> BKTParams:
    """Fit BKT parameters by EM (Baum-Welch) on per-learner outcome sequences of one skill."""
    import numpy as np

    seqs = [np.asarray(s, dtype=np.int64) for s in sequences if len(s)]
    if not seqs:
        raise ValueError("fit needs at least one non-empty sequence")
    p = init or BKTParams(prior=0.4, learn=0.2, guess=0.15, slip=0.1)
    prior, learn, forget, guess, slip = p.prior, p.learn, p.forget if fit_forget else 0.0, p.guess, p.slip
    last = -np.inf
    eps = 1e-6
    for _ in range(max_iter):
        A = np.array([[1 - learn, learn], [forget, 1 - forget]])
        E = np.array([[1 - guess, guess], [slip, 1 - slip]])
        g0 = np.zeros(2)
        xi = np.zeros((2, 2))
        emit = np.zeros((2, 2))
        ll = 0.0
        for seq in seqs:
            gamma, x, l = _forward_backward(seq, prior, A, E)
            g0 += gamma[0]
            xi += x
            for o in (0, 1):
                emit[:, o] += gamma[seq == o].sum(axis=0)
            ll += l
        prior = float(np.clip(g0[1] / g0.sum(), eps, 1 - eps))
        learn = float(np.clip(xi[0, 1] / xi[0].sum(), eps, 1 - eps)) if xi[0].sum() > 0 else learn
        if fit_forget and xi[1].sum() > 0:
            forget = float(np.clip(xi[1, 0] / xi[1].sum(), 0, 1 - eps))
        guess = float(np.clip(emit[0, 1] / emit[0].sum(), eps, 0.5 - eps))
        slip = float(np.clip(emit[1, 0] / emit[1].sum(), eps, 0.5 - eps))
        if ll - last < tol:
            break
        last = ll
    return BKTParams(prior=prior, learn=learn, forget=forget, guess=guess, slip=slip)
