"""The registry reconciler: MLflow brought back in line with Postgres, which decides.

Registration publishes to MLflow before it writes its rows, holding no transaction across the
call; a request that then fails (Postgres refused, MLflow answered after the client was told
503, the replica died) leaves a version in MLflow that no row points to. Alias moves are
mirrored to MLflow after they commit; a mirror that failed leaves MLflow's alias behind.

On start-up and every `HOKUSAI_REGISTRY_RECONCILE_INTERVAL_S`, each replica:
- deletes from MLflow a version this service published (it carries the `hokusai.request_key`
  tag) that has no Postgres row, is older than `HOKUSAI_REGISTRY_ORPHAN_GRACE_S`, and whose
  request holds no Idempotency-Key claim (a retry with that key may still reuse it);
- sets MLflow's aliases of every model Postgres knows to what Postgres says.

It never creates a row or an attestation, and never touches a version another tool made.
Version numbers deleted this way stay gaps: MLflow does not reuse them."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.adapters.registry import Inventory, PublishedVersion, Registry
from app.core.config import Settings
from app.core.errors import AppError
from app.core.metrics import Metrics
from app.db.base import utcnow
from app.db.repositories.idempotency import IdempotencyRepository
from app.db.repositories.ml_models import AliasRepository, VersionRepository
from app.services.idempotency import request_key

log = logging.getLogger(__name__)


@dataclass
class Findings:
    """What one pass found, and did unless it was a dry run."""

    orphans: list[PublishedVersion] = field(default_factory=list)  # deleted (or to delete)
    waiting: list[PublishedVersion] = field(default_factory=list)  # in grace or claimed
    aliases: list[tuple[str, str, int | None]] = field(default_factory=list)  # set (None: removed)


class Reconciler:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        registry: Registry,
        settings: Settings,
        metrics: Metrics | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.registry = registry
        self.grace = timedelta(seconds=settings.registry_orphan_grace_s)
        self.metrics = metrics

    async def run(self, *, dry_run: bool = False) -> Findings:
        inventory = await self.registry.inventory()  # no transaction is open across MLflow
        findings = await self._compare(inventory)
        if self.metrics is not None:
            self.metrics.registry_orphans.set(len(findings.orphans) + len(findings.waiting))
        if dry_run:
            return findings
        for orphan in findings.orphans:
            await self.registry.delete_version(orphan)
            log.warning(
                "deleted MLflow version %s of %s: no row recorded it (its request failed)",
                orphan.version,
                orphan.name,
            )
            self._count("orphan_version")
        for name, alias, version in findings.aliases:
            if version is None:
                await self.registry.delete_alias(name, alias)
            else:
                await self.registry.set_alias(name, alias, version)
            self._count("alias")
        return findings

    async def _compare(self, inventory: Inventory) -> Findings:
        now = utcnow()
        async with self.sessionmaker() as session:
            recorded = await VersionRepository(session).recorded(
                {v.name for v in inventory.published}
            )
            claims = await IdempotencyRepository(session).in_progress(now)
            aliases = await AliasRepository(session).by_model_name(inventory.aliases.keys())
        running = {request_key(api_key_id, key) for api_key_id, key in claims}
        findings = Findings()
        for version in inventory.published:
            if (version.name, version.version) in recorded:
                continue
            if version.created_at > now - self.grace or version.request_key in running:
                findings.waiting.append(version)
            else:
                findings.orphans.append(version)
        for name, wanted in aliases.items():
            held = inventory.aliases.get(name, {})
            for alias, number in sorted(wanted.items()):
                if held.get(alias) != number:
                    findings.aliases.append((name, alias, number))
            for alias in sorted(held.keys() - wanted.keys()):
                findings.aliases.append((name, alias, None))
        return findings

    def _count(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.registry_repairs.labels(kind).inc()

    async def every(self, interval_s: float) -> None:
        """Run now, then every `interval_s`, until cancelled; a pass that fails (MLflow or the
        database down) is logged and the next one tries again."""
        while True:
            try:
                findings = await self.run()
                if findings.orphans or findings.aliases:
                    log.info(
                        "registry reconciled: %d orphan versions deleted, %d aliases set",
                        len(findings.orphans),
                        len(findings.aliases),
                    )
            except AppError as exc:
                log.warning("registry reconciliation skipped: %s", exc.code)
            except Exception:
                log.exception("registry reconciliation failed")
            await asyncio.sleep(interval_s)
