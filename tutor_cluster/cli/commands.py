"""Implementations of the CLI subcommands (argument parsing lives in main.py)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

from tutor_cluster import constants


class CliError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _settings(path: str | None, port: int | None = None):  # noqa: ANN202
    from tutor_cluster.app.checks import check_settings
    from tutor_cluster.config.settings import ConfigError, load_settings

    try:
        settings = check_settings(load_settings(path), str(path or "settings"))
    except ConfigError as exc:
        raise CliError(str(exc), 2) from None
    if port is not None:
        if not 1 <= port <= 65535:
            raise CliError(f"--port must be between 1 and 65535, got {port}", 2)
        settings = settings.model_copy(update={"server": settings.server.model_copy(update={"port": port})})
    return settings


def _region_settings(path: str | None, region: str | None):  # noqa: ANN202
    """One region's settings for a command that works on one region's files (vault, secrets, audit log):
    ``--region`` names it; it may be left out when there is one region."""
    settings = _settings(path)
    names = settings.region_names()
    if region is None and len(names) > 1:
        raise CliError(f"--region: this deployment has several regions; name one of {', '.join(names)}", 2)
    if region is not None and region not in names:
        raise CliError(f"--region: {region!r} is not a region of these settings ({', '.join(names)})", 2)
    return settings.for_region(region or names[0])


def _curriculum(settings):  # noqa: ANN001, ANN202
    """The settings' curriculum, validated (None when there is none); bad input is exit 2 naming file:line."""
    from tutor_cluster.knowledge.curriculum import CurriculumError, load_curriculum

    source = settings.knowledge.source
    if not settings.knowledge.enabled or source is None:
        return None
    try:
        return load_curriculum(source)
    except CurriculumError as exc:
        raise CliError(f"curriculum: {exc}", 2) from None


def config_check(args: argparse.Namespace) -> int:
    settings = _settings(args.file)
    curriculum = _curriculum(settings)
    docs = f", curriculum {len(curriculum.documents)} documents" if curriculum else ""
    print(f"{args.file}: ok ({len(settings.catalogue.models)} models, {len(settings.exercises.exercises)} exercises, "
          f"policy {settings.routing.policy!r}{docs})")
    return 0


def model_prepare(args: argparse.Namespace) -> int:
    from tutor_cluster.core import bundled_model

    try:
        already = bundled_model.is_prepared() and not args.force
        path = bundled_model.prepare(force=args.force)
    except bundled_model.BundledModelError as exc:
        raise CliError(str(exc)) from None
    print(f"[model] {'reusing' if already else 'prepared'} {path}")
    return 0


def routing_train(args: argparse.Namespace) -> int:
    """Fit the learned routing policy; print its calibration."""
    from tutor_cluster.routing.learned import fit, read_outcomes

    try:
        rows = read_outcomes(args.log)
        model = fit(rows, args.target_core_share)
    except FileNotFoundError:
        raise CliError(f"{args.log}: file not found", 2) from None
    except ValueError as exc:
        raise CliError(str(exc), 2) from None
    model.save(args.out)
    m = model.metrics
    print(f"[routing] trained on {model.trained_on} outcomes: AUC {m['auc']}, core share {m['core_share']:.0%} "
          f"(target {args.target_core_share:.0%}), threshold {model.threshold:.3f} → {args.out}")
    return 0


def routing_ledger_export(args: argparse.Namespace) -> int:
    """Spend ledger → Parquet dataset partitioned by date."""
    from tutor_cluster.routing.budgets import BudgetLedger
    from tutor_cluster.routing.ledger import export_parquet

    settings = _settings(args.config)
    entries = BudgetLedger(settings.routing.budgets).entries()
    try:
        written = export_parquet(entries, args.out)
    except OSError as exc:
        raise CliError(f"--out {args.out}: cannot write: {exc.strerror or exc}", 2) from None
    print(f"[routing] {written} ledger entries → {args.out}")
    return 0


def dashboards_build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tutor_cluster.telemetry.dashboards import build

    out = args.out or Path(__file__).resolve().parents[2] / "deployments" / "grafana"
    try:
        written = build(out)
    except OSError as exc:
        raise CliError(f"--out {out}: cannot write: {exc.strerror or exc}", 2) from None
    for path in written:
        print(f"[dashboards] {path}")
    return 0


def dashboards_push(args: argparse.Namespace) -> int:
    from tutor_cluster.telemetry.dashboards import push

    token = args.token or os.environ.get("GRAFANA_TOKEN")
    if not token:
        raise CliError("a Grafana token is needed: --token or $GRAFANA_TOKEN", 2)
    if not args.url.startswith(("http://", "https://")):
        raise CliError(f"--url must start with http:// or https://, got {args.url!r}", 2)
    try:
        urls = push(args.url, token, args.folder_uid)
    except Exception as exc:  # noqa: BLE001 - grafana-client raises many kinds; one line for the operator
        raise CliError(f"push to {args.url} failed: {type(exc).__name__}: {exc}") from None
    for url in urls:
        print(f"[dashboards] {url}")
    return 0


def report(args: argparse.Namespace) -> int:
    from tutor_cluster.telemetry.report import ReportError, render

    events = args.events or _settings(args.config).telemetry.events.path
    try:
        summary = render(events, args.out)
    except ReportError as exc:
        raise CliError(str(exc), 2) from None
    except OSError as exc:
        raise CliError(f"--out {args.out}: cannot write: {exc.strerror or exc}", 2) from None
    print(f"[report] {args.out}: {summary['turns']} turns, {summary['learners']} learners, {summary['plots']} plots")
    return 0


def policies(args: argparse.Namespace) -> int:
    from tutor_cluster.routing.policies import registered_policies

    print("\n".join(registered_policies()))
    return 0


def _learner_store(settings, source: str | None) -> None:  # noqa: ANN001
    from tutor_cluster.app.checks import check_learner_store
    from tutor_cluster.config.settings import ConfigError

    try:
        warning = check_learner_store(settings, str(source or "settings"))
    except ConfigError as exc:
        raise CliError(str(exc), 2) from None
    if warning:
        print(f"[up] warning: {warning}", file=sys.stderr, flush=True)


def up(args: argparse.Namespace) -> int:
    from tutor_cluster.app import local

    settings = _settings(args.config, args.port)
    existing = local.RunState.load()
    if existing and local.pid_alive(existing.pid):
        raise CliError(f"already running (pid {existing.pid}) at {existing.url}; `tutor-cluster down` first")
    if not local.port_free(settings.server.host, settings.server.port):
        raise CliError(f"{settings.server.host}:{settings.server.port} is in use; choose another with --port")
    _curriculum(settings)  # before anything starts: a bad curriculum is exit 2, not a half-started service
    from tutor_cluster.app.checks import check_secret_files
    from tutor_cluster.config.settings import ConfigError

    for region in settings.region_names():  # each region: its own store and secrets
        regional = settings.for_region(region)
        _learner_store(regional, args.config)
        try:
            created = check_secret_files(regional, create=True)  # the gateway refuses to start without them
        except ConfigError as exc:
            raise CliError(str(exc), 2) from None
        for path in created:
            print(f"[up] secret created (mode 0600): {path}", flush=True)
    settings, key = local.with_local_key(settings)
    flag = local.StopFlag()  # installed again once Ray is up: ray.init replaces SIGTERM handlers
    print("[up] starting Ray and deploying (first start loads the model: ~1 min)", flush=True)
    t0 = time.monotonic()
    try:
        urls = local.start(settings)
        url = urls[0]
        flag.install()
        try:
            for each in urls:
                local.wait_ready(each, args.timeout, stop=lambda: flag.stopped)
        except (TimeoutError, InterruptedError) as exc:
            raise CliError(str(exc)) from None
        local.RunState(pid=os.getpid(), url=url, config=str(args.config or "default"),
                       key_file=str(constants.LOCAL_KEY_FILE) if key and not constants.API_KEY else None).save()
        shown = key if key else "<your api key>"
        print(f"[up] ready in {time.monotonic() - t0:.0f} s at {url}", flush=True)
        if settings.regions:
            for region, each in zip(settings.region_names(), urls, strict=True):
                print(f"[up] region {region}: {each}", flush=True)
        if key and not constants.API_KEY:
            print(f"[up] local API key (kept in {constants.LOCAL_KEY_FILE}): {key}")
        print(
            f"[up] try:\n  curl -s {url}/v1/tutor/turns -H 'Authorization: Bearer {shown}' "
            "-H 'Content-Type: application/json' \\\n"
            "    -d '{\"learner_id\": \"l1\", \"session_id\": \"s1\", \"exercise_id\": \"frac-add-1\", \"message\": \"0.75\"}'\n"
            "[up] Ctrl-C (or `tutor-cluster down`) stops it.",
            flush=True,
        )
        while not flag.stopped:
            time.sleep(0.5)
        print("[up] stopping", flush=True)
        return 0
    finally:
        local.RunState.clear()
        local.stop(settings)


def status(args: argparse.Namespace) -> int:
    from tutor_cluster.app import local

    state = local.RunState.load()
    if state is None or not local.pid_alive(state.pid):
        print("tutor-cluster: not running")
        return 3
    code, ready = local.http_get(f"{state.url}/readyz")
    key = constants.API_KEY or (open(state.key_file).read().strip() if state.key_file else None)
    scode, stats = local.http_get(f"{state.url}/v1/admin/stats", key) if key else (0, None)
    print(json.dumps({"pid": state.pid, "url": state.url, "config": state.config,
                      "ready": code == 200, "tiers": (ready or {}).get("tiers"),
                      "stats": stats if scode == 200 else None, "network": _network(state.pid)}, indent=2))
    return 0 if code == 200 else 1


def _network(pid: int) -> dict[str, object]:
    """What the kernel says about the sockets of `up` and every process below it (Ray, Serve, vLLM, jobs)."""
    from tutor_cluster.app import sockets

    pids = {pid} | sockets.descendants({pid})
    found = sockets.sockets_of(pids)
    exposed = [str(s) for s in found if s.exposed()]
    return {"loopback_only": not exposed, "processes": len(pids), "sockets": len(found), "exposed": exposed}


def down(args: argparse.Namespace) -> int:
    from tutor_cluster.app import local

    state = local.RunState.load()
    if state is None or not local.pid_alive(state.pid):
        local.RunState.clear()
        print("tutor-cluster: not running")
        return 0
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + args.timeout
    while local.pid_alive(state.pid):
        if time.monotonic() > deadline:
            raise CliError(f"pid {state.pid} did not stop within {args.timeout:.0f} s")
        time.sleep(0.5)
    print(f"tutor-cluster: stopped (pid {state.pid})")
    return 0
