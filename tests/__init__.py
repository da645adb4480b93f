"""The test suite, in tiers: ``unit`` (no servers), ``service`` (real Redis, local Ray, Ray Data), ``e2e`` (the
real service with the vLLM engine). Run in that order, so no tier shares the cores with an idle service."""

from pathlib import Path

#: The repository root (shipped configs, the sample curriculum, deployments).
REPO_ROOT = Path(__file__).resolve().parent.parent
