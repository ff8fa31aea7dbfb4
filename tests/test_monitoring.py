"""The Grafana dashboard and the Prometheus alert rules in deploy/monitoring name only metrics the
service exports, with labels those metrics have (`promtool check rules` checks the rules' syntax in
CI). A renamed metric or label fails here, not on an operator's empty panel."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram

from app.cli import ROOT
from app.core.metrics import Metrics

MONITORING = ROOT / "deploy/monitoring"
SELECTOR = re.compile(r"\b(hokusai_[a-z_]+)(?:\{([^}]*)\})?")
GROUPING = re.compile(r"\bby \(([^)]*)\)")


def exported() -> dict[str, set[str]]:
    """Every series name the service can export, with the labels it carries."""
    names: dict[str, set[str]] = {}
    for metric in vars(Metrics()).values():
        if isinstance(metric, Counter | Gauge | Histogram):
            base, labels = metric._name, set(metric._labelnames)
            if isinstance(metric, Counter):
                names[f"{base}_total"] = labels
            elif isinstance(metric, Histogram):
                names[f"{base}_bucket"] = labels | {"le"}
                names[f"{base}_sum"] = names[f"{base}_count"] = labels
            else:
                names[base] = labels
    return names


def expressions() -> list[tuple[str, str]]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    found = [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    found += [(rule["alert"], rule["expr"]) for group in rules["groups"] for rule in group["rules"]]
    return found


@pytest.mark.parametrize(("where", "expr"), expressions(), ids=[w for w, _ in expressions()])
def test_every_expression_names_exported_metrics_and_their_labels(where: str, expr: str) -> None:
    series = exported()
    used = SELECTOR.findall(expr)
    assert used, f"{where}: names no hokusai metric"
    labels_of_expr: set[str] = set()
    for name, matchers in used:
        assert name in series, f"{where}: {name} is not exported"
        for matcher in filter(None, (m.strip() for m in matchers.split(","))):
            label = re.split(r"[=!~]", matcher, maxsplit=1)[0]
            assert label in series[name], f"{where}: {name} has no label {label}"
        labels_of_expr |= series[name]
    for grouping in GROUPING.findall(expr):
        for label in (part.strip() for part in grouping.split(",")):
            assert label in labels_of_expr, f"{where}: grouped by {label}, which no series has"


def test_the_dashboard_covers_what_operators_watch() -> None:
    dashboard: dict[str, Any] = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    text = json.dumps(dashboard)
    for metric in (
        "hokusai_http_requests_total",  # rate and errors by route
        "hokusai_http_request_duration_seconds_bucket",  # latency by route
        "hokusai_predicted_rows_total",  # cache hit ratio
        "hokusai_model_load_duration_seconds_count",  # model loads
        "hokusai_model_call_rows_sum",  # batch sizes
        "hokusai_ab_events_total",  # A/B exposures
        "hokusai_dependency_check_duration_seconds_count",  # dependency health
    ):
        assert metric in text, metric
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


def test_the_alerts_cover_the_failure_modes() -> None:
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    assert set(alerts) >= {
        "HokusaiHighErrorRatio",
        "HokusaiSlowPredictions",
        "HokusaiDependencyDown",
        "HokusaiRateLimitFailOpen",
        "HokusaiWebhookDrops",
    }
    for rule in alerts.values():
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert rule["annotations"]["summary"]
