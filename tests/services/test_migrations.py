from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from app.cli import ROOT
from app.core.config import Settings
from app.db.models import Base
from tests.services_under_test import scratch_database, sync_url

VERSION_TABLE = "hokusai_alembic_version"
TABLES = {t.name for t in Base.metadata.sorted_tables}


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = Settings(
        database_url=database_url,
        _env_file=None,  # type: ignore[call-arg]
    ).database_url
    return config


def tables(url: str) -> set[str]:
    with psycopg.connect(sync_url(url)) as connection:
        rows = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


def test_upgrade_downgrade_upgrade_on_postgres(postgres_admin_url: str) -> None:
    with scratch_database(postgres_admin_url, "hokusai_migrations") as url:
        config = alembic_config(url)
        command.upgrade(config, "head")
        assert tables(url) == {*TABLES, VERSION_TABLE}
        command.downgrade(config, "base")
        assert tables(url) == {VERSION_TABLE}
        command.upgrade(config, "head")
        assert tables(url) == {*TABLES, VERSION_TABLE}


def test_models_agree_with_migrations_on_postgres(database_url: str) -> None:
    engine = create_engine(sync_url(database_url).replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_migrations_run_on_the_embedded_sqlite_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/hokusai.db"
    config = alembic_config(url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    engine = create_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        assert context.get_current_revision() is not None
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()
