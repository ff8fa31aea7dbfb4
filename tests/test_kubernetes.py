"""The Kubernetes base in deploy/kubernetes, checked without a cluster or kubectl: every resource
is valid against the Kubernetes schemas (kubernetes-validate, strict: an unknown field fails), and
it agrees with the service (its version, its settings, its probes, its user)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from app import __version__
from app.cli import ROOT
from app.core.config import Settings

BASE = ROOT / "deploy/kubernetes"


def kustomization() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    return document


def resources() -> list[dict[str, Any]]:
    found = []
    for name in kustomization()["resources"]:
        found += [doc for doc in yaml.safe_load_all((BASE / name).read_text()) if doc]
    return found


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [resource for resource in resources() if resource["kind"] == kind]


def containers() -> list[dict[str, Any]]:
    pods = [d["spec"]["template"]["spec"] for d in (*by_kind("Deployment"), *by_kind("Job"))]
    return [container for pod in pods for container in pod["containers"]]


@pytest.mark.parametrize(
    "resource", resources(), ids=lambda r: f"{r['kind']}/{r['metadata']['name']}"
)
def test_every_resource_is_valid_for_kubernetes(resource: dict[str, Any]) -> None:
    version = kubernetes_validate.latest_version()
    kubernetes_validate.validate(resource, version, strict=True)


def test_the_base_lists_every_file_and_the_whole_deployment() -> None:
    listed = set(kustomization()["resources"])
    assert listed == {path.name for path in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    kinds = {resource["kind"] for resource in resources()}
    assert kinds == {
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Job",
    }


def test_the_image_is_the_services_version() -> None:
    [image] = kustomization()["images"]
    assert image["name"] == "hokusai-api"
    assert image["newTag"] == __version__
    assert {container["image"] for container in containers()} == {"hokusai-api"}


def test_settings_are_real_and_secrets_stay_out_of_the_config_map() -> None:
    names = {f"HOKUSAI_{field.upper()}" for field in Settings.model_fields}
    [config] = by_kind("ConfigMap")
    assert set(config["data"]) <= names
    assert not any(re.search(r"URL|URI|SECRET|KEY$", key) for key in config["data"])
    for container in containers():
        for variable in container.get("env", []):
            assert variable["name"] in names
            assert "secretKeyRef" in variable["valueFrom"], variable["name"]
    # The ConfigMap's values, with the Secret's URLs, make settings production accepts.
    from_secret = {
        "database_url": "postgresql+psycopg://hokusai:secret@postgres.example:5432/hokusai",
        "redis_url": "redis://redis.example:6379/0",
        "mlflow_tracking_uri": "http://mlflow.example:5000",
    }
    assert {f"HOKUSAI_{name.upper()}" for name in from_secret} <= {
        variable["name"] for container in containers() for variable in container.get("env", [])
    }
    Settings(
        _env_file=None,  # type: ignore[call-arg]
        **{key.removeprefix("HOKUSAI_").lower(): value for key, value in config["data"].items()},
        **from_secret,
    )


def test_probes_name_the_services_health_endpoints() -> None:
    paths = set(json.loads((ROOT / "openapi.json").read_text())["paths"])
    [api] = [c for c in containers() if c["name"] == "api"]
    assert api["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    assert {"/ready", "/health"} <= paths
    assert api["ports"][0]["containerPort"] == Settings.model_fields["port"].default


def test_pods_run_as_the_images_user_without_privileges() -> None:
    user = re.search(r"^USER (\d+):(\d+)$", Path(ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert user is not None
    for kind in ("Deployment", "Job"):
        for resource in by_kind(kind):
            pod = resource["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert str(pod["securityContext"]["runAsUser"]) == user.group(1)
            assert pod["automountServiceAccountToken"] is False
    for container in containers():
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"]
