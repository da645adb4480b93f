"""`tutor-cluster keys ...`: API keys — make one (salted hash + prefix), list, revoke, legacy hash."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from tutor_cluster.cli.commands import CliError, _settings
from tutor_cluster.config.auth import ApiKey


def keys_new(args: argparse.Namespace) -> int:
    """A new key (shown once) and its settings entry: a salted scrypt hash and the key's lookup prefix."""
    import datetime as dt
    import json

    from tutor_cluster.api.auth import kdf_hash, new_key, prefix_of
    from tutor_cluster.identity import ROLES

    if args.role not in ROLES:
        raise CliError(f"--role: one of {', '.join(ROLES)}", 2)
    if args.role == "learner" and not args.learner_id:
        raise CliError("--learner-id is required with --role learner", 2)
    if args.expires_days is not None and args.expires_days < 1:
        raise CliError("--expires-days: a whole number of days, at least 1", 2)
    key = new_key()
    entry: dict[str, object] = {"id": args.id, "prefix": prefix_of(key), "hash": kdf_hash(key),
                                "tenant": args.tenant, "role": args.role, "scopes": args.scopes.split(",")}
    if args.learner_id:
        entry["learner_id"] = args.learner_id
    if args.expires_days is not None:
        expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=args.expires_days)
        entry["expires_at"] = expires.replace(microsecond=0).isoformat()
    try:  # exactly what settings will accept: a bad --scopes or --tenant is exit 2 here, not at deploy time
        ApiKey.model_validate(entry)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"]) or "key"
        raise CliError(f"--{field.split('.')[0].replace('_', '-')}: {err['msg'].removeprefix('Value error, ')}", 2) from None
    print(f"key (shown once): {key}")
    print("settings:\n  auth:\n    api_keys:")
    print(f"      - {json.dumps(entry)}")
    return 0


def keys_revoke(args: argparse.Namespace) -> int:
    """The settings' ``auth.api_keys`` block without the revoked key, to put in place of the old one (keys live in
    settings: revoking is that edit plus a redeploy, exactly as adding one is). Refuses an unknown id."""
    import json

    settings = _settings(args.config)
    keys = settings.auth.api_keys
    if not any(k.id == args.id for k in keys):
        raise CliError(f"no key {args.id!r} in {args.config or 'the settings'}; `tutor-cluster keys list` shows them", 2)
    kept = [k.model_dump(mode="json", exclude_none=True, exclude_defaults=True) | {"id": k.id}
            for k in keys if k.id != args.id]
    print(f"# auth.api_keys without {args.id!r}: replace the block in your settings and redeploy")
    print("auth:\n  api_keys:" + ("" if kept else " []"))
    for entry in kept:
        print(f"    - {json.dumps(entry)}")
    return 0


def keys_list(args: argparse.Namespace) -> int:
    """The configured keys: id, tenant, role, scopes, how the key is stored, and whether it is still valid."""
    import datetime as dt

    settings = _settings(args.config)
    now = dt.datetime.now(dt.timezone.utc)
    print(f"{'id':20} {'tenant':12} {'role':18} {'scopes':28} {'stored':14} expires")
    for k in settings.auth.api_keys:
        stored = f"scrypt {k.prefix}" if k.hash else "sha256 (legacy)"
        expires = "never" if k.expires_at is None else (
            f"{k.expires_at.isoformat()} ({'EXPIRED' if k.expires_at <= now else 'valid'})")
        print(f"{k.id:20} {k.tenant:12} {k.role:18} {','.join(k.scopes):28} {stored:14} {expires}")
    return 0


def keys_hash(args: argparse.Namespace) -> int:
    from tutor_cluster.api.auth import hash_key

    key = sys.stdin.readline().strip()
    if not key:
        raise CliError("no key on stdin", 2)
    print(hash_key(key))
    return 0
