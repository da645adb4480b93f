"""`tutor-cluster privacy ...`: the pseudonym secrets — check them, rotate them."""

from __future__ import annotations

import argparse

from tutor_cluster.app.checks import check_pseudonym_keys
from tutor_cluster.cli.commands import CliError, _settings
from tutor_cluster.config.settings import ConfigError
from tutor_cluster.privacy import PseudonymKeys, rotate_key_file


def _keys(settings) -> PseudonymKeys:  # noqa: ANN001
    try:
        return check_pseudonym_keys(settings, create=False)[0]
    except ConfigError as exc:
        raise CliError(str(exc), 2) from None


def privacy_rotate_key(args: argparse.Namespace) -> int:
    """A new current secret; the old ones stay for reading rows written under them. Restart the service after."""
    settings = _settings(args.config)
    keys = _keys(settings)
    version = rotate_key_file(settings.privacy.keys_path())
    print(f"pseudonym secrets: new current version {version} (was {keys.current}); restart the service to use it")
    return 0


def privacy_show(args: argparse.Namespace) -> int:
    """Versions of the pseudonym secrets (never the secrets)."""
    settings = _settings(args.config)
    keys = _keys(settings)
    print(f"{settings.privacy.keys_path()}: current {keys.current}; versions {', '.join(keys.versions)}")
    return 0
