"""`hokusai-api`: serve, migrate, manage API keys and signing keys, export the OpenAPI document."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import SecretStr, ValidationError

from app.api.server import GuardedHttpToolsProtocol, Limits
from app.core.config import DATA_DIR, Settings
from app.core.logging import configure_logging
from app.core.security import Scope, generate_key

if TYPE_CHECKING:
    from fastapi import FastAPI

    from app.wiring import Resources, Services

T = TypeVar("T")
log = logging.getLogger("hokusai")

ROOT = Path(__file__).resolve().parent.parent
# Alembic's revisions: `migrations/` at the top of a checkout (and of the image); an installed
# wheel carries them inside the package, as `app/migrations` (see pyproject.toml).
_SHIPPED = Path(__file__).resolve().parent / "migrations"
MIGRATIONS = _SHIPPED if _SHIPPED.is_dir() else ROOT / "migrations"
DEV_KEY_FILE = DATA_DIR / "dev-api-key"


def migrate(settings: Settings, revision: str = "head") -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    config.attributes["database_url"] = settings.database_url
    command.upgrade(config, revision)


def serve(settings: Settings, *, run_migrations: bool) -> None:
    import uvicorn

    from app.main import create_app

    if run_migrations or settings.embedded:
        migrate(settings)
    if settings.embedded and settings.bootstrap_api_key is None:
        settings = settings.model_copy(update={"bootstrap_api_key": SecretStr(_dev_key())})
        log.warning(
            "embedded mode: SQLite and a local MLflow store under %s/, caching off; "
            "not for production",
            DATA_DIR,
        )
        assert settings.bootstrap_api_key is not None
        print(
            f"\n  Hokusai API on http://{settings.host}:{settings.port}  (docs: /docs)\n"
            f"  development admin key: {settings.bootstrap_api_key.get_secret_value()}\n"
            "  try: curl -H 'Authorization: Bearer "
            f"{settings.bootstrap_api_key.get_secret_value()}'"
            f" http://{settings.host}:{settings.port}/api/v1/api-keys\n",
            flush=True,
        )
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        # Forwarding headers only from the proxies named (none by default): X-Forwarded-For
        # from anyone else would let a client pick the address its failures are counted on.
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": settings.forwarded_allow_ips or "",
        "http": "app.api.server:GuardedHttpToolsProtocol",
        "timeout_graceful_shutdown": 10,
    }
    GuardedHttpToolsProtocol.limits = Limits.from_settings(settings)
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **options)
        return
    # Several processes on one port: each builds its app from the environment (migrations ran
    # once, above), and their metrics go to one folder that /metrics sums.
    # A folder of this run's own (inside PROMETHEUS_MULTIPROC_DIR when given, a tmpfs say):
    # prometheus-client sums every *.db file of its folder, so no earlier run's values and no
    # other file may be there; nothing of the given folder is read, changed or removed.
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
    metrics_dir = tempfile.mkdtemp(prefix="hokusai-metrics-", dir=given)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run("app.cli:worker_app", factory=True, workers=settings.workers, **options)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def worker_app() -> FastAPI:
    """The app of one of several worker processes, from the environment `serve` was given."""
    from app.main import create_app

    settings = Settings()
    configure_logging(settings.log_level)
    GuardedHttpToolsProtocol.limits = Limits.from_settings(settings)
    return create_app(settings)


def _dev_key() -> str:
    """The development admin key, kept in .hokusai/ so it survives restarts."""
    if DEV_KEY_FILE.exists():
        return DEV_KEY_FILE.read_text().strip()
    DEV_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    DEV_KEY_FILE.write_text(key + "\n")
    DEV_KEY_FILE.chmod(0o600)
    return key


@contextlib.asynccontextmanager
async def resources(settings: Settings) -> AsyncIterator[Resources]:
    """What the service is built from, wired as the API wires it (`app/wiring.py`)."""
    from app.core.metrics import Metrics
    from app.wiring import open_resources

    async with open_resources(settings, Metrics()) as opened:
        yield opened


def _in_unit_of_work(settings: Settings, work: Callable[[Services], Awaitable[T]]) -> T:
    """`work` on the services of one unit of work: what it changes is announced to the running
    replicas (through Redis) once committed, as a request's changes are."""
    from app.wiring import Services

    async def run() -> T:
        async with resources(settings) as opened, opened.unit_of_work() as session:
            return await work(Services(session, opened))

    return asyncio.run(run())


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def create_key(settings: Settings, name: str, scopes: list[Scope]) -> None:
    api_key, secret = _in_unit_of_work(settings, lambda s: s.api_keys.create_key(name, scopes))
    print(secret)
    log.info("created API key %s (%s) with scopes %s", api_key.id, name, ",".join(scopes))


def list_keys(settings: Settings) -> None:
    items, _ = _in_unit_of_work(settings, lambda s: s.api_keys.list_keys(limit=10_000, offset=0))
    _print_json(
        [
            {
                "id": k.id,
                "name": k.name,
                "prefix": k.prefix,
                "scopes": k.scopes,
                "created_at": k.created_at,
                "revoked_at": k.revoked_at,
            }
            for k in items
        ]
    )


def list_signing_keys(settings: Settings) -> None:
    keys = _in_unit_of_work(settings, lambda s: s.attestations.keys())
    _print_json([key.model_dump(exclude={"public_key_pem"}) for key in keys.keys])


def generate_signing_key(path: Path) -> None:
    """A new Ed25519 private key (PEM, mode 0600) for HOKUSAI_ATTESTATION_KEY(_FILE)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from app.services.signing import key_id

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            out.write(pem)
    except FileExistsError:
        sys.exit(f"{path} exists; not overwritten")
    print(key_id(key.public_key()))


def rotate_signing_key(settings: Settings) -> None:
    keys = _in_unit_of_work(settings, lambda s: s.attestations.rotate())
    _print_json([key.model_dump(exclude={"public_key_pem"}) for key in keys])


def retire_signing_key(settings: Settings, keyid: str, compromised_at: datetime | None) -> None:
    from app.core.errors import SigningKeyNotFound

    try:
        key = _in_unit_of_work(settings, lambda s: s.attestations.retire(keyid, compromised_at))
    except SigningKeyNotFound as exc:
        sys.exit(str(exc))
    _print_json(key.model_dump(exclude={"public_key_pem"}))


def revoke_key(settings: Settings, api_key_id: uuid.UUID) -> None:
    _in_unit_of_work(settings, lambda s: s.api_keys.revoke_key(api_key_id))
    print(f"revoked {api_key_id}")


async def import_registry(
    settings: Settings, names: list[str] | None, defaults: Any, *, dry_run: bool
) -> list[Any]:
    """Record the versions of an MLflow registry the upstream SDK populated (see
    `app/services/mlflow_import.py`); what each version became."""
    from app.services.mlflow_import import MlflowImport

    async with resources(settings) as opened:
        await opened.registry.start()
        return await MlflowImport(opened).run(names, defaults, dry_run=dry_run)


async def reconcile_registry(settings: Settings, *, dry_run: bool) -> Any:
    """One pass of the registry reconciler (`app/services/reconciliation.py`)."""
    from app.services.reconciliation import Reconciler

    async with resources(settings) as opened:
        await opened.registry.start()
        reconciler = Reconciler(opened.sessionmaker, opened.registry, settings, opened.metrics)
        return await reconciler.run(dry_run=dry_run)


def reconcile(settings: Settings, dry_run: bool) -> None:
    findings = asyncio.run(reconcile_registry(settings, dry_run=dry_run))
    verb = "would delete" if dry_run else "deleted"
    for orphan in findings.orphans:
        print(f"{orphan.name} v{orphan.version}\t{verb} (no row recorded it)")
    for orphan in findings.waiting:
        print(f"{orphan.name} v{orphan.version}\tkept (in its grace period or still running)")
    for name, alias, version in findings.aliases:
        target = f"-> v{version}" if version is not None else "removed"
        print(f"{name} @{alias}\t{'would set' if dry_run else 'set'} {target}")
    print(
        f"{len(findings.orphans)} orphan versions {verb}, {len(findings.waiting)} kept, "
        f"{len(findings.aliases)} aliases {'to set' if dry_run else 'set'}"
    )


def import_mlflow(settings: Settings, args: argparse.Namespace) -> None:
    from app.services.mlflow_import import ImportDefaults

    defaults = ImportDefaults(
        dataset_hash=args.dataset_hash,
        num_samples=args.num_samples,
        direction=args.direction,
        family=args.family,
        model_type=args.model_type,
    )
    outcomes = asyncio.run(
        import_registry(settings, args.model or None, defaults, dry_run=args.dry_run)
    )
    for outcome in outcomes:
        reason = f": {outcome.reason}" if outcome.reason else ""
        print(f"{outcome.model} v{outcome.version}\t{outcome.action}{reason}")
    counts = {
        a: sum(o.action == a for o in outcomes) for a in dict.fromkeys(o.action for o in outcomes)
    }
    print(", ".join(f"{n} {a}" for a, n in counts.items()) or "nothing found")


def export_openapi(settings: Settings, output: str | None) -> None:
    from app.main import create_app

    document = json.dumps(create_app(settings).openapi(), indent=2) + "\n"
    if output:
        Path(output).write_text(document)
    else:
        sys.stdout.write(document)


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("an RFC 3339 time, e.g. 2026-12-01T09:30:00Z") from exc
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("give the time zone, e.g. 2026-12-01T09:30:00Z")
    return moment.astimezone(UTC)


def _scopes(text: str) -> list[Scope]:
    try:
        return [Scope(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"scopes are {', '.join(Scope)}") from exc


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="hokusai-api", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser(
        "serve",
        help="run the API server",
        description="Run the API server. It reads its settings from HOKUSAI_* environment "
        "variables (and a .env file): HOKUSAI_DATABASE_URL, HOKUSAI_REDIS_URL, "
        "HOKUSAI_MLFLOW_TRACKING_URI, HOKUSAI_ATTESTATION_KEY, HOKUSAI_WORKERS, ...; with none "
        "set, embedded SQLite and a local MLflow store under .hokusai/. Every setting: "
        "docs/reference/configuration.md.",
    )
    serve_cmd.add_argument("--migrate", action="store_true", help="upgrade the database first")
    serve_cmd.add_argument("--host", help="address to listen on (HOKUSAI_HOST, 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, help="port to listen on (HOKUSAI_PORT, 8000)")
    migrate_cmd = commands.add_parser("migrate", help="upgrade the database schema")
    migrate_cmd.add_argument("revision", nargs="?", default="head")
    keys = commands.add_parser("api-key", help="manage API keys").add_subparsers(
        dest="action", required=True
    )
    create = keys.add_parser("create", help="create a key and print its secret")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", type=_scopes, default=[Scope.READ], help="read,predict,...")
    keys.add_parser("list", help="list keys (without secrets)")
    revoke = keys.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id", type=uuid.UUID)
    signing = commands.add_parser(
        "signing-key",
        help="rotate or retire the attestation signing key (docs/how-to/operate.md)",
    ).add_subparsers(dest="action", required=True)
    signing.add_parser("list", help="the published keys and their validity periods")
    generate = signing.add_parser("generate", help="write a new Ed25519 key (PEM) and print its id")
    generate.add_argument("path", type=Path)
    signing.add_parser(
        "rotate",
        help="publish the configured key and end every other key's period now "
        "(run once every replica signs with the new key)",
    )
    retire = signing.add_parser("retire", help="end a key's period now, or when it was compromised")
    retire.add_argument("keyid")
    retire.add_argument(
        "--compromised-at",
        type=_moment,
        help="when the key was compromised (RFC 3339): what it signed from then on is invalid",
    )
    importing = commands.add_parser(
        "import-mlflow", help="record an MLflow registry the upstream SDK populated"
    )
    importing.add_argument("--model", action="append", help="only this model (repeatable)")
    importing.add_argument("--dataset-hash", help="sha256:<64 hex> of the benchmark dataset")
    importing.add_argument("--num-samples", type=int, help="samples in the benchmark dataset")
    importing.add_argument("--direction", choices=["higher_is_better", "lower_is_better"])
    importing.add_argument("--family", choices=["proportion", "continuous"])
    importing.add_argument("--model-type", default="custom")
    importing.add_argument("--dry-run", action="store_true", help="report, write nothing")
    reconciling = commands.add_parser(
        "reconcile",
        help="bring MLflow in line with Postgres now: delete versions no row recorded (past "
        "HOKUSAI_REGISTRY_ORPHAN_GRACE_S), set aliases to Postgres's",
    )
    reconciling.add_argument("--dry-run", action="store_true", help="report, change nothing")
    openapi_cmd = commands.add_parser("openapi", help="print the OpenAPI document")
    openapi_cmd.add_argument("--output", "-o")
    return root


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.exit(f"invalid settings:\n{exc}")
    configure_logging(settings.log_level)
    match args.command, getattr(args, "action", None):
        case "serve", _:
            chosen = {"host": args.host, "port": args.port}
            try:
                settings = Settings.model_validate(
                    {
                        **settings.model_dump(),
                        **{k: v for k, v in chosen.items() if v is not None},
                    }
                )
            except ValidationError as exc:
                sys.exit(f"invalid settings:\n{exc}")
            serve(settings, run_migrations=args.migrate)
        case "migrate", _:
            migrate(settings, args.revision)
        case "api-key", "create":
            create_key(settings, args.name, args.scopes)
        case "api-key", "list":
            list_keys(settings)
        case "api-key", "revoke":
            revoke_key(settings, args.id)
        case "signing-key", "list":
            list_signing_keys(settings)
        case "signing-key", "generate":
            generate_signing_key(args.path)
        case "signing-key", "rotate":
            rotate_signing_key(settings)
        case "signing-key", "retire":
            retire_signing_key(settings, args.keyid, args.compromised_at)
        case "openapi", _:
            export_openapi(settings, args.output)
        case "import-mlflow", _:
            import_mlflow(settings, args)
        case "reconcile", _:
            reconcile(settings, args.dry_run)


if __name__ == "__main__":
    main()
