"""Upstream's `hokusai.tracking.performance.PerformanceTracker`, over the service. Upstream
computed deltas locally and signed nothing ("placeholder_for_oracle_signature"); here deltas,
DeltaOne decisions and signed attestations come from registering the improved version, and a
contributor's impact is read from the service (upstream always answered zeros)."""

from __future__ import annotations

import os
from typing import Any

from hokusai._compat import client_for, deprecated, missing
from hokusai.errors import ConfigurationError


class PerformanceTracker:
    def __init__(self, *, api_key: str | None = None, api_endpoint: str | None = None) -> None:
        deprecated("PerformanceTracker", "HokusaiClient().models.register / .contributors.impact")
        self.client = client_for(api_key, api_endpoint)

    def track_improvement(
        self,
        baseline_metrics: dict[str, float],
        improved_metrics: dict[str, float],
        data_contribution: dict[str, Any],
        *,
        model_name: str | None = None,
        artifact: str | os.PathLike[str] | None = None,
        source_uri: str | None = None,
        dataset: dict[str, Any] | None = None,
        parent_version: int | None = None,
    ) -> tuple[dict[str, float], dict[str, Any] | None]:
        """Register the improved version and return (delta per metric, the signed attestation
        or None when DeltaOne was not reached). `baseline_metrics` are the parent's, as the
        service recorded them; the service needs `model_name`, the model (`artifact=` or
        `source_uri=`), the `dataset` and `data_contribution["contributor_address"]`."""
        address = data_contribution.get("contributor_address")
        if (
            model_name is None
            or dataset is None
            or address is None
            or (artifact or source_uri) is None
        ):
            raise missing(
                model_name=model_name,
                dataset=dataset,
                artifact=artifact or source_uri,
                **{"data_contribution['contributor_address']": address},
            )
        version = self.client.models.register(
            model_name,
            kind="improved",
            artifact=artifact,
            source_uri=source_uri,
            metrics=improved_metrics,
            dataset=dataset,
            parent_version=parent_version,
            contributors=[{"address": address, "weight": 1}],
        )
        delta = {metric: d.absolute for metric, d in (version.delta or {}).items()}
        attestation = None
        if version.attestation_id is not None:
            attestation = self.client.attestations.get(version.attestation_id).model_dump(
                mode="json"
            )
        return delta, attestation

    def get_contributor_impact(self, contributor_address: str) -> dict[str, Any]:
        """The contributor's impact as the service measured it."""
        impact = self.client.contributors.impact(contributor_address)
        return {
            "total_models_improved": impact.models_improved,
            "total_improvement_score": impact.weighted_gain_pp,
            "contributions": [
                c.model_dump(mode="json")
                for c in self.client.contributors.contributions(contributor_address)
            ],
            "first_contribution": impact.first_contribution_at,
            "last_contribution": impact.last_contribution_at,
        }

    def log_contribution_impact(
        self, contributor_address: str, model_id: str, delta: dict[str, float]
    ) -> None:
        raise ConfigurationError(
            "The service records a contribution when the improved version is registered "
            "(models.register(..., kind='improved', contributors=[...])); nothing to log apart"
        )
