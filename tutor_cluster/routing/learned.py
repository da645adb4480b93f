"""The ``learned`` policy: a logistic model predicting whether the cheaper model suffices, with its threshold
calibrated to a target share of core calls (as RouteLLM calibrates its strong/weak router).

Training data are logged outcomes: rows of ``{"features": {...}, "small_ok": true|false}``, exactly what the
spend ledger records for cascade interactions (``small_ok`` = the cheap answer passed verification), so running
the ``cascade`` policy for a while produces the data to train ``learned`` (``tutor-cluster routing train``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tutor_cluster.config.catalogue import Catalogue
from tutor_cluster.config.routing import RoutingConfig
from tutor_cluster.edge.signals import EdgeSignals
from tutor_cluster.jsonl import read_jsonl
from tutor_cluster.routing.decisions import Decision, DecisionFeatures, LearnerFeatures, TwoModelPolicy, register_policy

#: Model inputs, in order; built from the features every policy reports.
FEATURES = ("complexity", "question", "answer_attempt", "hint_request", "checked", "check_wrong", "mastery", "mastery_known",
            "attempts", "misconceptions")


def vectorize(features: DecisionFeatures | Mapping[str, Any]) -> np.ndarray:
    """The model's input row; ``features`` as a decision reports them or as a ledger logged them."""
    f = features if isinstance(features, DecisionFeatures) else DecisionFeatures.model_validate(features)
    return np.array([
        f.complexity,
        1.0 if f.intent == "question" else 0.0,
        1.0 if f.intent == "answer_attempt" else 0.0,
        1.0 if f.intent == "hint_request" else 0.0,
        1.0 if f.checked else 0.0,
        1.0 if f.check_correct is False else 0.0,
        f.mastery if f.mastery is not None else 0.0,
        0.0 if f.mastery is None else 1.0,
        min(float(f.attempts), 20.0) / 20.0,
        min(float(f.misconceptions), 10.0) / 10.0,
    ])


class LearnedModel(BaseModel):
    """Standardised logistic regression + the calibrated threshold on P(small suffices)."""

    model_config = ConfigDict(frozen=True)

    features: list[str] = Field(default_factory=lambda: list(FEATURES))
    mean: list[float]
    scale: list[float]
    weights: list[float]
    bias: float
    threshold: float = Field(description="Route to core when P(small suffices) is below this.")
    target_core_share: float
    trained_on: int
    metrics: dict[str, float] = Field(default_factory=dict)

    def p_small_ok(self, features: DecisionFeatures | Mapping[str, Any]) -> float:
        x = (vectorize(features) - np.array(self.mean)) / np.array(self.scale)
        return float(1 / (1 + np.exp(-(x @ np.array(self.weights) + self.bias))))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "LearnedModel":
        file = Path(path).expanduser()
        try:
            return cls.model_validate_json(file.read_text())
        except FileNotFoundError:
            raise ValueError(f"routing.learned.model_path: {file} not found; train one with "
                             "`tutor-cluster routing train LOG --out FILE`") from None
        except ValueError as exc:
            raise ValueError(f"routing.learned.model_path: {file} is not a trained routing model: {exc}") from None


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    ranks = np.argsort(np.argsort(np.concatenate([pos, neg]))) + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def fit(rows: Iterable[tuple[Mapping[str, Any], bool]], target_core_share: float, *, l2: float = 1e-3,
        steps: int = 2000, lr: float = 0.5) -> LearnedModel:
    """Fit by full-batch gradient descent; pick the threshold whose core share on the data is the target."""
    data = [(vectorize(f), 1.0 if ok else 0.0) for f, ok in rows]
    if len(data) < 10:
        raise ValueError(f"need at least 10 labelled outcomes to train, got {len(data)}")
    if not 0 < target_core_share < 1:
        raise ValueError("target core share must be between 0 and 1")
    x = np.stack([d[0] for d in data])
    y = np.array([d[1] for d in data])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        w -= lr * (z.T @ (p - y) / len(y) + l2 * w)
        b -= lr * float((p - y).mean())
    p = 1 / (1 + np.exp(-(z @ w + b)))
    threshold = float(np.quantile(p, target_core_share))
    core = p < threshold
    return LearnedModel(
        mean=mean.tolist(), scale=scale.tolist(), weights=w.tolist(), bias=b, threshold=threshold,
        target_core_share=target_core_share, trained_on=len(y),
        metrics={"auc": round(_auc(p, y), 4), "core_share": round(float(core.mean()), 4),
                 "small_ok_rate": round(float(y.mean()), 4),
                 "small_ok_when_small": round(float(y[~core].mean()), 4) if (~core).any() else float("nan")},
    )


def read_outcomes(path: str | Path) -> list[tuple[dict[str, Any], bool]]:
    """Labelled rows from a JSONL log or a ledger Parquet export; rows without an outcome are skipped.
    Raises ValueError naming the line for malformed JSONL."""
    file = Path(path)
    if file.is_dir() or file.suffix == ".parquet":
        import pyarrow.dataset as ds

        table = ds.dataset(file, format="parquet", partitioning="hive").to_table(columns=["features", "small_ok"])
        return [(json.loads(f), bool(ok)) for f, ok in zip(table["features"].to_pylist(),
                                                          table["small_ok"].to_pylist()) if ok is not None]
    out = []
    for number, row in read_jsonl(file.read_text(encoding="utf-8").splitlines(), str(file)):
        if not isinstance(row.get("features"), dict):
            raise ValueError(f"{file}:{number}: features: expected an object")
        if row.get("small_ok") is None:
            continue
        if not isinstance(row["small_ok"], bool):
            raise ValueError(f"{file}:{number}: small_ok: expected true, false or null")
        out.append((row["features"], row["small_ok"]))
    return out


@register_policy("learned")
class LearnedPolicy(TwoModelPolicy):
    """Routes to the cheaper model when the trained model says it suffices, else to the stronger one."""

    name = "learned"

    def __init__(self, config: RoutingConfig, catalogue: Catalogue) -> None:
        cfg = config.learned
        if cfg.model_path is None:
            raise ValueError("routing.learned.model_path is required for policy 'learned'")
        self._model = LearnedModel.load(cfg.model_path)
        super().__init__(catalogue, cfg.small_model, cfg.core_model)

    def decide(self, signals: EdgeSignals, learner: LearnerFeatures | None = None) -> Decision:
        p = self._model.p_small_ok(DecisionFeatures.of(signals, learner))
        features = DecisionFeatures.of(signals, learner, p_small_ok=round(p, 4), threshold=round(self._model.threshold, 4))
        share = f"target core share {self._model.target_core_share:.0%}"
        if p >= self._model.threshold:
            return self._pick(self._small, f"learned: P(small suffices) {p:.2f} >= {self._model.threshold:.2f} "
                                           f"({share})", features)
        return self._pick(self._core, f"learned: P(small suffices) {p:.2f} < {self._model.threshold:.2f} ({share})",
                          features)
