"""`tutor-cluster learner ...`: learner memory operations (BKT fitting, the tenancy migration) and the learner-store
check `up` runs."""

from __future__ import annotations

import argparse

from tutor_cluster.cli.commands import CliError, _region_settings


def learner_fit_bkt(args: argparse.Namespace) -> int:
    """Print a `learner.policy.bkt_by_skill` settings block fitted from the log."""
    from pathlib import Path

    import yaml

    from tutor_cluster.learner.fitting import LogError, fit_log

    try:
        fitted = fit_log(Path(args.log), fit_forget=args.fit_forget)
    except LogError as exc:
        raise CliError(str(exc), 2) from None
    block = {"learner": {"policy": {"bkt_by_skill": {
        skill: {k: round(v, 6) for k, v in p.model_dump().items()} for skill, p in fitted.items()}}}}
    print(yaml.safe_dump(block, sort_keys=False), end="")
    return 0


def learner_migrate_tenancy(args: argparse.Namespace) -> int:
    """Assign the learners written before tenancy (keyed by learner id alone) to one tenant."""
    import re

    from tutor_cluster.identity import TENANT_PATTERN
    from tutor_cluster.learner.stores import open_store

    if not re.fullmatch(TENANT_PATTERN, args.tenant):
        raise CliError(f"--tenant: {args.tenant!r} is not a tenant name (letters, digits, '.', '_', '-')", 2)
    settings = _region_settings(args.config, args.region)
    store = open_store(settings.learner.store)
    try:
        moved = store.migrate_legacy(args.tenant)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - an unreachable store: one line, nothing half-moved (see migrate_legacy)
        raise CliError(f"learner store: {type(exc).__name__}: {exc}") from None
    finally:
        store.close()
    print(f"moved {moved} learner(s) under tenant {args.tenant!r}")
    return 0
