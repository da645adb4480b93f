"""`tutor-cluster report`: one self-contained HTML page from the interaction events (Parquet), with plots —
mastery curves, tier mix, cost per mastered skill, latency percentiles — embedded as PNG."""

from __future__ import annotations

import base64
import html
import io
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tutor_cluster.telemetry.events import read_events


class ReportError(ValueError):
    """No usable events."""


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _figures(df: Any) -> list[tuple[str, str, str]]:
    """(title, caption, base64 PNG) per plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    graded = df[df["mastery_after"].notna()].copy()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if not graded.empty:
        graded["n"] = graded.groupby(["learner", "skill"]).cumcount() + 1
        for skill, rows in graded.groupby("skill"):
            curve = rows.groupby("n")["mastery_after"].mean()
            ax.plot(curve.index, curve.values, marker="o", label=skill)
        ax.axhline(0.95, ls="--", c="grey", lw=0.8)
        ax.legend(fontsize=8)
    ax.set_xlabel("graded attempt")
    ax.set_ylabel("mean P(known)")
    out.append(("Mastery curves", "Mean BKT mastery after the n-th graded attempt, per skill (dashed: mastery "
                                  "threshold).", _png(fig)))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3))
    mix = df["tier"].value_counts()
    ax.bar(mix.index.astype(str), mix.values, color=["#4c9f70", "#3b75af", "#c44e52"][: len(mix)])
    ax.set_ylabel("turns")
    out.append(("Tier mix", "Which tier answered: the edge (deterministic, cost 0), the small or the core model.",
                _png(fig)))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3))
    cost = df.groupby("skill")["cost"].sum()
    mastered = df[df["mastered"].fillna(False) & (df["mastery_before"] < 0.95)].groupby("skill").size()
    per = (cost / mastered.reindex(cost.index).fillna(0).clip(lower=1)).sort_values()
    ax.barh(per.index.astype(str), per.values, color="#8172b2")
    ax.set_xlabel("cost per mastered skill")
    out.append(("Cost per mastered skill", "Spend on each skill's turns divided by the number of times it was "
                                           "mastered (at least 1).", _png(fig)))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3))
    quantiles = df.groupby("tier")["latency_total_ms"].quantile([0.5, 0.9, 0.99]).unstack()
    quantiles.plot.bar(ax=ax, rot=0)
    ax.set_ylabel("ms")
    ax.legend(["p50", "p90", "p99"], fontsize=8)
    out.append(("Latency percentiles", "Turn latency by answering tier.", _png(fig)))
    plt.close(fig)
    return out


def render(events: str | Path, out: str | Path) -> dict[str, Any]:
    try:
        df = read_events(events)
    except (FileNotFoundError, OSError) as exc:
        raise ReportError(f"{events}: no events dataset ({exc})") from None
    if df.empty:
        raise ReportError(f"{events}: the dataset has no events")
    figures = _figures(df)
    summary = {
        "turns": int(len(df)), "learners": int(df["learner"].nunique()), "sessions": int(df["session"].nunique()),
        "skills mastered": int((df["mastered"].fillna(False) & (df["mastery_before"] < 0.95)).sum()),
        "total cost": round(float(df["cost"].sum()), 6),
        "edge share": round(float((df["tier"] == "edge").mean()), 3),
    }
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in summary.items())
    blocks = "".join(f"<section><h2>{html.escape(t)}</h2><p>{html.escape(c)}</p>"
                     f"<img alt='{html.escape(t)}' src='data:image/png;base64,{b}'></section>"
                     for t, c, b in figures)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    Path(out).write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>tutor-cluster report</title>"
        "<style>body{font-family:sans-serif;max-width:900px;margin:2em auto}th{text-align:left;padding-right:1em}"
        "img{max-width:100%}</style></head><body>"
        f"<h1>tutor-cluster learning report</h1><p>{html.escape(str(events))} · generated {when}</p>"
        f"<table>{rows}</table>{blocks}</body></html>\n", encoding="utf-8")
    return {**summary, "plots": len(figures)}
