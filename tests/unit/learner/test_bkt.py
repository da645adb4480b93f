"""BKT against pyBKT itself (pybkt 1.4.3): online posterior to 1e-9, EM fit AUC within 0.005."""

import numpy as np
import pytest

# pyBKT.models imports an sklearn probe that breaks on current sklearn; its fitting and prediction
# engine (the code Model.fit runs) imports fine, and that is what we compare against.
from pyBKT.fit import EM_fit, predict_onestep  # noqa: E402
from pyBKT.generate import random_model_uni, synthetic_data  # noqa: E402
from sklearn.metrics import roc_auc_score

from tutor_cluster.learner import bkt


def _pybkt_model(p: bkt.BKTParams) -> dict:
    return {"prior": p.prior, "learns": np.array([p.learn]), "forgets": np.array([p.forget]),
            "guesses": np.array([p.guess]), "slips": np.array([p.slip])}


def _data(obs: np.ndarray, lengths: np.ndarray) -> dict:
    starts = np.cumsum(lengths) - lengths + 1
    return {"data": (obs.astype(np.int32) + 1)[None, :], "starts": starts, "lengths": lengths,
            "resources": np.ones(int(lengths.sum()), dtype=np.int64)}


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("params", [
    bkt.BKTParams(prior=0.3, learn=0.15, forget=0.05, guess=0.2, slip=0.1),
    bkt.BKTParams(prior=0.05, learn=0.4, forget=0.0, guess=0.3, slip=0.05),
    bkt.BKTParams(prior=0.8, learn=0.01, forget=0.2, guess=0.45, slip=0.45),
])
def test_online_update_equals_pybkt(params: bkt.BKTParams, seed: int) -> None:
    rng = np.random.default_rng(seed)
    obs = rng.integers(0, 2, size=60).astype(bool)
    _, states = predict_onestep.run(_pybkt_model(params), _data(obs, np.array([60])))
    ours = np.array(bkt.trace(list(obs), params))
    assert np.max(np.abs(states[1] - ours)) < 1e-9


def test_em_fit_matches_pybkt_auc_on_its_synthetic_data() -> None:
    np.random.seed(7)
    truth = {"prior": 0.25, "learns": np.array([0.12]), "forgets": np.array([0.0]),
             "guesses": np.array([0.18]), "slips": np.array([0.08])}
    lengths = np.full(300, 20)
    syn = synthetic_data.synthetic_data(dict(truth), lengths)
    syn["resources"] = np.ones(int(lengths.sum()), dtype=np.int64)
    obs = syn["data"][0] - 1
    seqs = [obs[s - 1:s - 1 + n].astype(bool).tolist() for s, n in zip(syn["starts"], syn["lengths"])]

    best, best_ll = None, -np.inf  # as pyBKT's Model.fit: 5 random starts, keep the best likelihood
    rand = np.random.RandomState(42)
    for _ in range(5):
        model, ll = EM_fit.EM_fit(random_model_uni.random_model_uni(1, 1, rand=rand), syn, parallel=False)
        if ll[-1] > best_ll:
            best, best_ll = model, ll[-1]
    best["learns"], best["forgets"], best["prior"] = best["As"][:, 1, 0], best["As"][:, 0, 1], best["pi_0"][1][0]
    pybkt_pred, _ = predict_onestep.run(best, syn)

    fitted = bkt.fit(seqs)
    ours_pred = np.concatenate([[bkt.p_correct(p, fitted) for p in bkt.trace(s, fitted)] for s in seqs])
    auc_pybkt, auc_ours = roc_auc_score(obs, pybkt_pred), roc_auc_score(obs, ours_pred)
    assert abs(auc_ours - auc_pybkt) < 0.005
    assert abs(fitted.learn - 0.12) < 0.05 and abs(fitted.slip - 0.08) < 0.05  # and it recovers the truth


def test_mastery_is_reached_only_by_getting_it_right() -> None:
    p = bkt.BKTParams()
    good = bkt.trace([True] * 12 + [True], p)
    bad = bkt.trace([False, True] * 6 + [False], p)
    assert good[-1] >= 0.95 > bad[-1]


def test_guess_plus_slip_must_leave_signal() -> None:
    with pytest.raises(ValueError):
        bkt.BKTParams(guess=0.49, slip=0.49 + 0.02)
