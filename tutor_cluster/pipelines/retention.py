"""The retention sweep: delete what each data class's retention (``privacy.retention``) no longer allows.

    python -m tutor_cluster.pipelines.retention [--config FILE]      (or: tutor-cluster retention sweep)

It works on the stores directly (no Ray needed), so it runs from cron, a Kubernetes CronJob or as a Ray job
(``ray job submit -- python -m tutor_cluster.pipelines.retention --config …``) on the schedule you choose.
Learner memory enforces the same rules on every read and write (``learner/context.py: retained``), so an
expired context is never served between sweeps; the sweep is what removes it from disk. A registered learner
inactive past ``vault_days`` is blocked at once and their erasure job begun (``vault_learners_expired``); the
gateway replicas finish it (``privacy.erasure_resume_interval_s``), as they finish a DELETE a crash interrupted. Prints one JSON line of
counts; exit 0 done, 1 a store failed (the others were still swept), 2 bad settings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from tutor_cluster.audit.log import open_audit
from tutor_cluster.config.settings import Settings
from tutor_cluster.learner.context import retained
from tutor_cluster.learner.stores import open_store
from tutor_cluster.privacy import PseudonymKeys
from tutor_cluster.routing.budgets import BudgetLedger
from tutor_cluster.telemetry.events import expire_partitions
from tutor_cluster.turns.rights import expire_learner
from tutor_cluster.vault.backends import open_vault
from tutor_cluster.vault.crypto import KeyEncryptionKeys


def sweep(settings: Settings, *, now: float | None = None) -> dict[str, Any]:
    """Sweep every data class with a retention period; returns counts (and ``errors`` per class that failed).
    With ``regions``, each region's memory and event partitions by its own retention (counts under
    ``regions.<name>``, errors as ``<name>.<class>``); the spend ledger (pseudonymous, shared) and the event
    partitions of regions not configured by the top level's."""
    t = time.time() if now is None else now
    counts: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def step(name: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - one store down must not spare the others
            errors[name] = f"{type(exc).__name__}: {exc}"

    def region(mine: Settings, out: dict[str, Any], prefix: str) -> None:
        retention = mine.privacy.retention

        def memory() -> None:
            store = open_store(mine.learner.store)
            try:
                out["memory_learners_deleted"], out["memory_contexts_trimmed"] = store.sweep(
                    lambda ctx: retained(ctx, retention, t))
            finally:
                store.close()

        def events() -> None:
            cut = retention.cutoff(retention.events_days, t)
            out["event_rows_deleted"] = (expire_partitions(mine.telemetry.events.path, cut,
                                                           mine.privacy.region if mine.regions else None)
                                         if cut is not None else 0)

        def audit() -> None:
            cut = retention.cutoff(retention.audit_days, t)
            privacy = mine.privacy
            if cut is None or not privacy.audit_redis_url and not privacy.audit_path().is_file():
                out["audit_records_deleted"] = 0
                return
            store = open_audit(privacy)
            try:
                out["audit_records_deleted"] = store.expire(
                    dt.datetime.fromtimestamp(cut, dt.timezone.utc).isoformat(timespec="milliseconds"))
            finally:
                store.close()

        def vault() -> None:
            cut = retention.cutoff(retention.vault_days, t)
            privacy = mine.privacy
            out["vault_learners_expired"] = 0
            if cut is None or not privacy.vault_redis_url and not privacy.vault_path().is_file():
                return
            keys = PseudonymKeys.load(privacy.keys_path())
            store = open_vault(privacy, KeyEncryptionKeys.load(privacy.kek_path()))
            failed: list[str] = []
            try:
                for tenant, learner_id in store.inactive(cut):
                    try:
                        out["vault_learners_expired"] += expire_learner(store, keys, tenant, learner_id, cut)
                    except Exception as exc:  # noqa: BLE001 - the others are still expired
                        failed.append(f"{type(exc).__name__}: {exc}")
            finally:
                store.close()
            if failed:
                raise RuntimeError(f"{len(failed)} learner(s) not expired, the first: {failed[0]}")

        if retention.vault_days is not None:
            step(prefix + "vault", vault)
        if retention.memory_days is not None or retention.turn_summaries_days is not None:
            step(prefix + "memory", memory)
        step(prefix + "events", events)
        if retention.audit_days is not None:
            step(prefix + "audit", audit)

    def ledger() -> None:
        retention = settings.privacy.retention
        cut = retention.cutoff(retention.ledger_days, t)
        budgets = settings.routing.budgets
        counts["ledger_entries_deleted"] = (BudgetLedger(budgets).expire(cut)
                                            if cut is not None and budgets.ledger else 0)

    def others() -> None:  # partitions of regions no longer configured (or written before regions)
        retention = settings.privacy.retention
        cut = retention.cutoff(retention.events_days, t)
        counts["event_rows_deleted_other_regions"] = (
            expire_partitions(settings.telemetry.events.path, cut, besides=frozenset(settings.region_names()))
            if cut is not None else 0)

    if settings.regions:
        counts["regions"] = {}
        for name in settings.region_names():
            region(settings.for_region(name), counts["regions"].setdefault(name, {}), f"{name}.")
        step("events", others)
    else:
        region(settings, counts, "")
    step("ledger", ledger)
    if errors:
        counts["errors"] = errors
    return counts


def main(argv: list[str] | None = None) -> int:
    from tutor_cluster.config.settings import ConfigError, load_settings

    p = argparse.ArgumentParser(prog="python -m tutor_cluster.pipelines.retention",
                                description="Delete learner data past its retention period (privacy.retention).")
    p.add_argument("--config", help="Settings file (default: $TUTOR_CONFIG or the shipped default.yaml).")
    args = p.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"retention: {exc}", file=sys.stderr)
        return 2
    counts = sweep(settings)
    print(json.dumps({"retention": counts}), flush=True)
    return 1 if "errors" in counts else 0


if __name__ == "__main__":
    sys.exit(main())
