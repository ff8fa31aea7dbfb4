from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from app.adapters.registry import Registry
from app.core.config import Settings
from app.core.errors import RegistryRejected, RegistryUnavailable
from tests.services_under_test import free_port


async def test_calls_reach_the_real_mlflow_server(settings: Settings) -> None:
    registry = Registry(settings)
    await registry.start()
    try:
        await registry.ping(timeout_s=5)
        name = f"adapter-{uuid.uuid4().hex[:8]}"
        experiment_id = await registry.call(lambda client: client.create_experiment(name))
        found = await registry.call(lambda client: client.get_experiment_by_name(name))
        assert found is not None
        assert found.experiment_id == experiment_id
    finally:
        registry.close()


async def test_mlflow_client_errors_are_rejections_not_outages(settings: Settings) -> None:
    registry = Registry(settings)
    await registry.start()
    try:
        with pytest.raises(RegistryRejected) as raised:
            await registry.call(lambda client: client.get_registered_model("does-not-exist-xyz"))
        assert raised.value.mlflow_status == 404
        assert raised.value.status == 400  # a request MLflow refuses is the caller's error
    finally:
        registry.close()


async def test_closed_port_is_registry_unavailable_fast(
    make_settings: Callable[..., Settings],
) -> None:
    registry = Registry(make_settings(mlflow_tracking_uri=f"http://127.0.0.1:{free_port()}"))
    await registry.start()
    started = time.monotonic()
    try:
        with pytest.raises(RegistryUnavailable) as raised:
            await registry.ping(timeout_s=5)
    finally:
        registry.close()
    assert time.monotonic() - started < 5, "no retry loop behind a closed port"
    assert raised.value.status == 503
    assert raised.value.headers["Retry-After"] == "5"


async def test_a_call_that_outlives_its_timeout_is_unavailable(settings: Settings) -> None:
    registry = Registry(settings)
    await registry.start()
    try:
        with pytest.raises(RegistryUnavailable, match=r"within 0\.2 s"):
            await registry.call(lambda client: time.sleep(2), timeout_s=0.2)
    finally:
        registry.close()


async def test_calls_before_start_are_unavailable(settings: Settings) -> None:
    registry = Registry(settings)
    with pytest.raises(RegistryUnavailable):
        await registry.ping(timeout_s=1)
    registry.close()
