"""The ``tutor-cluster`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tutor_cluster.cli import audit as audit_commands
from tutor_cluster.cli import commands
from tutor_cluster.cli import keys as keys_commands
from tutor_cluster.cli import learner as learner_commands
from tutor_cluster.cli import privacy as privacy_commands


def _config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="settings file (default: $TUTOR_CONFIG or the shipped default.yaml)")


def _region(parser: argparse.ArgumentParser) -> None:
    _config(parser)
    parser.add_argument("--region", help="which region's files (required when the settings have several regions)")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tutor-cluster", description="Run and operate the tutor-cluster tutoring engine.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    up = sub.add_parser("up", help="start local Ray, deploy the app, wait until ready; Ctrl-C stops it")
    up.add_argument("--config", help="settings YAML (default: $TUTOR_CONFIG or the shipped default.yaml)")
    up.add_argument("--port", type=int, help="HTTP port (overrides server.port)")
    up.add_argument("--timeout", type=float, default=600, help="seconds to wait for readiness (default 600)")
    up.set_defaults(func=commands.up)

    st = sub.add_parser("status", help="show whether the local service is up and what each tier reports")
    st.set_defaults(func=commands.status)

    down = sub.add_parser("down", help="stop the service started by `tutor-cluster up`")
    down.add_argument("--timeout", type=float, default=60, help="seconds to wait for it to stop")
    down.set_defaults(func=commands.down)

    cfg = sub.add_parser("config", help="settings files")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, parser_class=_Parser)
    check = cfg_sub.add_parser("check", help="validate a settings file (exit 2 with one line on error)")
    check.add_argument("file")
    check.set_defaults(func=commands.config_check)

    model = sub.add_parser("model", help="the bundled model")
    model_sub = model.add_subparsers(dest="model_command", required=True, parser_class=_Parser)
    prep = model_sub.add_parser("prepare", help="convert the bundled GGUF into a Hugging Face folder (once)")
    prep.add_argument("--force", action="store_true", help="convert again even if already prepared")
    prep.set_defaults(func=commands.model_prepare)

    keys = sub.add_parser("keys", help="API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, parser_class=_Parser)
    new = keys_sub.add_parser("new", help="print a new random key and the hash to put in settings")
    new.add_argument("--id", default="my-key", help="key id for the settings snippet")
    new.add_argument("--tenant", default="default", help="the key's tenant")
    new.add_argument("--role", default="service", help="the key's role (docs/roles.md)")
    new.add_argument("--learner-id", help="for --role learner: the learner the key is")
    new.add_argument("--scopes", default="tutor,chat", help="comma-separated scopes")
    new.add_argument("--expires-days", type=int, help="the key expires after this many days (rotation)")
    new.set_defaults(func=keys_commands.keys_new)
    lst = keys_sub.add_parser("list", help="the configured keys and whether each is still valid")
    _config(lst)
    lst.set_defaults(func=keys_commands.keys_list)
    rev = keys_sub.add_parser("revoke", help="print the settings' keys without this one (paste, redeploy)")
    rev.add_argument("id", help="the key's id")
    _config(rev)
    rev.set_defaults(func=keys_commands.keys_revoke)
    hsh = keys_sub.add_parser("hash", help="legacy: print the unsalted SHA-256 of a key read from stdin")
    hsh.set_defaults(func=keys_commands.keys_hash)

    learner = sub.add_parser("learner", help="learner memory")
    learner_sub = learner.add_subparsers(dest="learner_command", required=True, parser_class=_Parser)
    fitp = learner_sub.add_parser("fit-bkt", help="fit BKT parameters per skill by EM from an interaction log")
    fitp.add_argument("log", help="JSON lines: {learner_id, skill, correct}, in time order")
    fitp.add_argument("--fit-forget", action="store_true", help="also fit P(forget) (default: fixed at 0)")
    fitp.set_defaults(func=learner_commands.learner_fit_bkt)
    mig = learner_sub.add_parser("migrate-tenancy", help="assign learners stored before tenancy to one tenant")
    mig.add_argument("--tenant", required=True, help="the tenant those learners belong to")
    _region(mig)
    mig.set_defaults(func=learner_commands.learner_migrate_tenancy)

    audit = sub.add_parser("audit", help="the disclosure audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, parser_class=_Parser)
    ver = audit_sub.add_parser("verify", help="check the hash chain: exit 1 names the first bad record")
    _region(ver)
    ver.add_argument("--expect-head", help="the head hash a previous verify printed (catches an edited or cut end)")
    ver.set_defaults(func=audit_commands.audit_verify)

    privacy = sub.add_parser("privacy", help="pseudonym secrets, the vault's key-encryption key")
    privacy_sub = privacy.add_subparsers(dest="privacy_command", required=True, parser_class=_Parser)
    rot = privacy_sub.add_parser("rotate-key", help="make a new current pseudonym secret (old ones are kept)")
    _region(rot)
    rot.set_defaults(func=privacy_commands.privacy_rotate_key)
    show = privacy_sub.add_parser("show", help="the pseudonym secrets' versions (never the secrets)")
    _region(show)
    show.set_defaults(func=privacy_commands.privacy_show)
    kek = privacy_sub.add_parser("rotate-kek", help="new vault key-encryption key; tenant data keys re-wrapped")
    _region(kek)
    kek.set_defaults(func=privacy_commands.privacy_rotate_kek)

    retention = sub.add_parser("retention", help="delete learner data past its retention period")
    retention_sub = retention.add_subparsers(dest="retention_command", required=True, parser_class=_Parser)
    swp = retention_sub.add_parser("sweep", help="memory, turn summaries, events, ledger (privacy.retention)")
    _config(swp)
    swp.set_defaults(func=privacy_commands.retention_sweep)

    routing = sub.add_parser("routing", help="routing: train the learned policy, export the spend ledger")
    routing_sub = routing.add_subparsers(dest="routing_command", required=True, parser_class=_Parser)
    train = routing_sub.add_parser("train", help="fit the 'learned' policy from logged outcomes")
    train.add_argument("log", help="JSON lines {features, small_ok} or a ledger Parquet export (file or folder)")
    train.add_argument("--target-core-share", type=float, default=0.3,
                       help="share of turns the core model should get (threshold calibration; default 0.3)")
    train.add_argument("--out", required=True, help="where to write the model (routing.learned.model_path)")
    train.set_defaults(func=commands.routing_train)
    export = routing_sub.add_parser("ledger-export", help="write the spend ledger to Parquet, partitioned by date")
    export.add_argument("--out", required=True, help="output folder (a Parquet dataset: date=YYYY-MM-DD/...)")
    _config(export)
    export.set_defaults(func=commands.routing_ledger_export)

    dash = sub.add_parser("dashboards", help="Grafana dashboards as code")
    dash_sub = dash.add_subparsers(dest="dashboards_command", required=True, parser_class=_Parser)
    dbuild = dash_sub.add_parser("build", help="write the dashboards' JSON (default: deployments/grafana)")
    dbuild.add_argument("--out", default=None, help="output folder")
    dbuild.set_defaults(func=commands.dashboards_build)
    dpush = dash_sub.add_parser("push", help="create or overwrite the dashboards in a Grafana")
    dpush.add_argument("--url", required=True, help="Grafana URL, e.g. https://grafana.example.org")
    dpush.add_argument("--token", default=None, help="service-account token (default: $GRAFANA_TOKEN)")
    dpush.add_argument("--folder-uid", default=None, help="folder to put them in")
    dpush.set_defaults(func=commands.dashboards_push)

    rep = sub.add_parser("report", help="HTML report with plots from the interaction events (Parquet)")
    rep.add_argument("--events", default=None, help="events dataset (default: telemetry.events.path)")
    rep.add_argument("--config", default=None, help="settings file (for the default events path)")
    rep.add_argument("--out", default="tutor-report.html", help="HTML file to write")
    rep.set_defaults(func=commands.report)

    pol = sub.add_parser("policies", help="list registered routing policies")
    pol.set_defaults(func=commands.policies)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except commands.CliError as exc:
        print(f"tutor-cluster: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
