"""Every example in `examples/` runs to the end against the live service, with the SDK installed
from its wheel, and says what it did."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import ROOT
from tests.docs.conftest import UserService

EXAMPLES = ROOT / "examples"


def test_every_example_is_tested() -> None:
    tested = {
        "basic_usage",
        "gtm_integration",
        "ab_testing",
        "lineage_and_attestations",
        "migrating_from_the_upstream_sdk",
    }
    assert {path.stem for path in EXAMPLES.glob("*.py")} == tested


def test_basic_usage(user_python: Path, user_service: UserService) -> None:
    printed = user_service.run(user_python, str(EXAMPLES / "basic_usage.py"))
    assert "pp measured (ROC AUC 0." in printed
    assert "on 2000 rows), DeltaOne accepted" in printed
    assert "(cache MISS, then HIT)" in printed
    assert "rollback: production -> v1" in printed
    assert '-->|"+' in printed  # the Mermaid lineage


def test_gtm_integration(user_python: Path, user_service: UserService) -> None:
    """GTM-backend's configuration: a base URL ending in /api."""
    printed = user_service.run(
        user_python, str(EXAMPLES / "gtm_integration.py"), base_url=user_service.url + "/api"
    )
    assert "the batch agrees with the single calls: True" in printed
    assert "neutral score" not in printed
    assert "batch: 50 leads scored by v1, 10 from the cache" in printed


def test_ab_testing(user_python: Path, user_service: UserService) -> None:
    printed = user_service.run(user_python, str(EXAMPLES / "ab_testing.py"))
    assert "counted, 0 ignored" in printed  # OutcomesAccepted: accepted and ignored
    assert "verdict: treatment_better" in printed
    assert "sample ratio mismatch: False" in printed
    assert "production is now v2" in printed


def test_lineage_and_attestations(user_python: Path, user_service: UserService) -> None:
    printed = user_service.run(user_python, str(EXAMPLES / "lineage_and_attestations.py"))
    assert "verified offline: models/" in printed
    assert "EIP-712 signature verified" in printed
    assert "the service agrees: valid=True, matches its record=True" in printed
    assert "chain of 2 attestations is valid: True" in printed
    assert "(accepted, measured)" in printed
    assert "offline, hokusai.verify: 18 checks, valid: True" in printed


@pytest.mark.filterwarnings("error")
def test_migrating_from_the_upstream_sdk(user_python: Path, user_service: UserService) -> None:
    printed = user_service.run(
        user_python,
        "-W",
        "always::DeprecationWarning",
        str(EXAMPLES / "migrating_from_the_upstream_sdk.py"),
    )
    assert "upstream way:" in printed
    assert "new way:" in printed
    assert "DeltaOne accepted" in printed
