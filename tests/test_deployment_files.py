"""The compose file, the container files, .env.example and the README agree with the settings."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from app.cli import ROOT
from app.core.config import Settings

INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}")


def interpolate(value: str) -> str:
    """Compose's interpolation with nothing set: `:-` gives its default; `:?` stands for a
    required value (here a placeholder)."""
    return INTERPOLATION.sub(
        lambda match: match.group(3) if match.group(2) == "-" else f"<{match.group(1)}>", value
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def api_environment(compose: dict[str, Any]) -> dict[str, str]:
    return {
        key: interpolate(str(value))
        for key, value in compose["services"]["api"]["environment"].items()
    }


def option(command: list[str], flag: str) -> str:
    return interpolate(command[command.index(flag) + 1])


def test_compose_has_the_whole_stack(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "redis", "mlflow", "migrate", "api"}
    depends = compose["services"]["api"]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    for service in ("postgres", "redis", "mlflow"):
        assert depends[service]["condition"] == "service_healthy"
        assert "healthcheck" in compose["services"][service]
    assert compose["services"]["migrate"]["command"] == ["hokusai-api", "migrate"]
    assert set(compose["volumes"]) == {"postgres-data", "mlflow-artifacts", "signing-keys"}
    key_file = compose["services"]["api"]["environment"]["HOKUSAI_ATTESTATION_KEY_FILE"]
    assert any(
        key_file.startswith(volume.split(":")[1])
        for volume in compose["services"]["api"]["volumes"]
    ), "the attestation key survives a container restart"


def test_compose_has_no_default_password_and_keeps_mlflow_on_loopback(
    compose: dict[str, Any],
) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "version" not in compose, "obsolete in the Compose specification"
    assert "POSTGRES_PASSWORD:-" not in text
    assert compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == (
        "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
    )
    [published] = compose["services"]["mlflow"]["ports"]
    assert interpolate(published) == "127.0.0.1:5000:5000", "MLflow has no authentication"


def test_api_environment_names_real_settings_and_validates(compose: dict[str, Any]) -> None:
    environment = api_environment(compose)
    fields = {f"HOKUSAI_{name.upper()}" for name in Settings.model_fields}
    assert set(environment) <= fields, set(environment) - fields
    values = {key.removeprefix("HOKUSAI_").lower(): value for key, value in environment.items()}
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    assert not settings.embedded
    assert settings.environment == "production"
    assert (
        compose["services"]["migrate"]["environment"] == compose["services"]["api"]["environment"]
    )


def test_api_urls_point_at_the_compose_services(compose: dict[str, Any]) -> None:
    environment = api_environment(compose)
    services = compose["services"]
    database = urlsplit(environment["HOKUSAI_DATABASE_URL"])
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert database.path == "/" + services["postgres"]["environment"]["POSTGRES_DB"]
    redis = urlsplit(environment["HOKUSAI_REDIS_URL"])
    assert (redis.hostname, redis.port) == ("redis", 6379)
    mlflow = urlsplit(environment["HOKUSAI_MLFLOW_TRACKING_URI"])
    command = services["mlflow"]["command"]
    assert mlflow.hostname == "mlflow"
    assert str(mlflow.port) == option(command, "--port")
    assert "mlflow" in option(command, "--allowed-hosts").split(",")
    assert f"mlflow:{mlflow.port}" in option(command, "--allowed-hosts") or "mlflow:*" in option(
        command, "--allowed-hosts"
    )


def test_mlflow_stores_runs_in_its_own_postgres_database(compose: dict[str, Any]) -> None:
    store = urlsplit(option(compose["services"]["mlflow"]["command"], "--backend-store-uri"))
    assert store.hostname == "postgres"
    assert store.path == "/mlflow"
    assert "CREATE DATABASE mlflow" in (ROOT / "docker/postgres-init.sql").read_text()
    assert option(compose["services"]["mlflow"]["command"], "--artifacts-destination") in (
        volume.split(":")[1] for volume in compose["services"]["mlflow"]["volumes"]
    )


def test_published_api_port_matches_settings_and_image(compose: dict[str, Any]) -> None:
    port = api_environment(compose)["HOKUSAI_PORT"]
    [published] = compose["services"]["api"]["ports"]
    assert interpolate(published) == f"127.0.0.1:8000:{port}", "loopback by default"
    assert "${API_PORT:-8000}" in published, "the host's port is a setting"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"EXPOSE {port}" in dockerfile
    assert f"HOKUSAI_PORT={port}" in dockerfile
    assert re.search(r"^USER \d+:\d+$", dockerfile, re.MULTILINE), "runs as non-root"
    assert "HEALTHCHECK" in dockerfile


def test_env_example_and_the_docs_list_every_setting() -> None:
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "docs" / "reference" / "configuration.md").read_text()
    for name in Settings.model_fields:
        variable = f"HOKUSAI_{name.upper()}"
        assert f"# {variable}=" in example, variable
        assert f"`{variable}`" in readme, variable


def test_the_image_carries_the_services_version() -> None:
    """app/__init__.py is the one source of the version (the wheel reads it through hatch); the
    image's label repeats it, so a release that forgets the Dockerfile fails here."""
    from app import __version__

    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"ARG VERSION={__version__}\n" in dockerfile
    assert 'org.opencontainers.image.version="${VERSION}"' in dockerfile
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{__version__}]" in changelog


def test_compose_secrets_are_written_to_env_once_and_kept(tmp_path: Path) -> None:
    """`scripts/compose-secrets` writes what compose needs into .env (mode 0600); a second run
    changes nothing, so the next `up` reaches the database the first one created."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "compose-secrets", checkout / "scripts")
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    first = subprocess.run(
        [str(checkout / "scripts" / "compose-secrets")], env=env, capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    written = (checkout / ".env").read_text()
    values = dict(line.split("=", 1) for line in written.splitlines())
    assert set(values) == set(SECRETS)
    assert re.fullmatch(r"[0-9a-f]{48}", values["POSTGRES_PASSWORD"])
    assert re.fullmatch(r"hk_[0-9a-f]{48}", values["HOKUSAI_BOOTSTRAP_API_KEY"])
    assert stat.S_IMODE((checkout / ".env").stat().st_mode) == 0o600
    again = subprocess.run(
        [str(checkout / "scripts" / "compose-secrets")], env=env, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    assert (checkout / ".env").read_text() == written, "kept, not regenerated"
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


SECRETS = ("POSTGRES_PASSWORD", "HOKUSAI_BOOTSTRAP_API_KEY")


def test_the_service_wheel_migrates_without_a_checkout(tmp_path: Path) -> None:
    """`migrations/` is at the top of the checkout; the wheel carries it inside the package, so
    `hokusai-api migrate` from an installed wheel (or the image) finds every revision."""
    subprocess.run(
        ["python3", "-m", "uv", "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("hokusai_api-*.whl")
    installed = tmp_path / "site"
    shutil.unpack_archive(wheel, installed, "zip")
    revisions = sorted(p.name for p in (ROOT / "migrations" / "versions").glob("*.py"))
    shipped = sorted(p.name for p in (installed / "app" / "migrations" / "versions").glob("*.py"))
    assert revisions
    assert shipped == revisions
    assert (installed / "app" / "migrations" / "env.py").is_file()
    database = tmp_path / "hokusai.db"
    url = f"sqlite+aiosqlite:///{database}"
    program = (
        "import app.cli as cli; from app.core.config import Settings; "
        f"assert cli.MIGRATIONS.is_relative_to({str(installed)!r}), cli.MIGRATIONS; "
        f"cli.migrate(Settings(_env_file=None, database_url={url!r}))"
    )
    # The unpacked wheel first on the path, run from elsewhere: no checkout to fall back on.
    environment = {**os.environ, "PYTHONPATH": str(installed)}
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", program],
        check=True,
        cwd=tmp_path,
        env=environment,
    )
    assert database.stat().st_size > 0
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY migrations ./migrations" in dockerfile
