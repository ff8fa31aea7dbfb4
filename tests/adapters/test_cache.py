from __future__ import annotations

import asyncio
import math
import uuid
from urllib.parse import urlsplit

import redis

from app.adapters.cache import Cache
from app.core.metrics import Metrics
from tests.proxy import Proxy
from tests.services_under_test import free_port


def counter(metrics: Metrics, operation: str, result: str) -> float:
    value = metrics.registry.get_sample_value(
        "hokusai_cache_operations_total", {"operation": operation, "result": result}
    )
    return value or 0.0


async def test_values_round_trip_as_json_in_one_batch(redis_url: str) -> None:
    metrics = Metrics()
    cache = Cache(redis_url, prefix=f"t-{uuid.uuid4().hex}", timeout_s=0.5, metrics=metrics)
    try:
        keys = [cache.key("pred", str(i)) for i in range(3)]
        await cache.set_many({keys[0]: {"score": 0.5}, keys[2]: [1, 2]}, ttl_s=30)
        assert await cache.get_many(keys) == [{"score": 0.5}, None, [1, 2]]
        raw = redis.Redis.from_url(redis_url)
        assert raw.get(keys[0]) == b'{"score":0.5}'
        assert 0 < raw.ttl(keys[0]) <= 30
        raw.close()
    finally:
        await cache.close()
    assert counter(metrics, "get", "hit") == 2
    assert counter(metrics, "get", "miss") == 1


async def test_a_batch_of_writes_is_stored_whole_and_a_stored_row_is_read_by_the_next_request(
    redis_url: str,
) -> None:
    """A thousand rows go as one command, each with its value and its TTL; `store` returns at
    once and its writes reach Redis ahead of any read issued after it."""
    metrics = Metrics()
    cache = Cache(redis_url, prefix=f"t-{uuid.uuid4().hex}", timeout_s=0.5, metrics=metrics)
    raw = redis.Redis.from_url(redis_url)
    try:
        items = {cache.key("pred", str(i)): [i / 7, {"label": f"c{i}"}] for i in range(1000)}
        assert await cache.set_many(items, ttl_s=40)
        assert await cache.get_many(list(items)) == list(items.values())
        assert {0 < raw.ttl(key) <= 40 for key in list(items)[::97]} == {True}
        assert raw.get(cache.key("pred", "3")) == b'[0.42857142857142855,{"label":"c3"}]'

        later = {cache.key("later", str(i)): i for i in range(5)}
        cache.store(later, ttl_s=30)
        assert await cache.get_many([*later, cache.key("later", "x")]) == [0, 1, 2, 3, 4, None]
        cache.store({cache.key("alone"): "one"}, ttl_s=30)  # a single SET
        assert await cache.get_many([cache.key("alone")]) == ["one"]
    finally:
        raw.close()
        await cache.close()
    assert counter(metrics, "set", "error") == 0


async def test_a_lost_write_is_counted_and_never_raised() -> None:
    metrics = Metrics()
    cache = Cache(f"redis://127.0.0.1:{free_port()}/0", prefix="t", timeout_s=0.2, metrics=metrics)
    try:
        cache.store({f"k{i}": i for i in range(10)}, ttl_s=10)
        for _ in range(100):
            if counter(metrics, "set", "error"):
                break
            await asyncio.sleep(0.01)
    finally:
        await cache.close()
    assert counter(metrics, "set", "error") == 1


async def test_a_dead_redis_is_a_miss_and_a_metric_never_an_error() -> None:
    metrics = Metrics()
    cache = Cache(f"redis://127.0.0.1:{free_port()}/0", prefix="t", timeout_s=0.2, metrics=metrics)
    try:
        assert await cache.get_many(["a", "b"]) == [None, None]
        await cache.set_many({"a": 1}, ttl_s=10)
        assert await cache.hit_window("w", 60) is None
    finally:
        await cache.close()
    assert counter(metrics, "get", "error") == 1
    assert counter(metrics, "set", "error") == 1
    assert counter(metrics, "incr", "error") == 1


async def test_window_counts_hits_and_expires(redis_url: str) -> None:
    cache = Cache(redis_url, prefix=f"t-{uuid.uuid4().hex}", timeout_s=0.5, metrics=Metrics())
    try:
        key = cache.key("ratelimit", "k", "1")
        assert [await cache.hit_window(key, 60) for _ in range(3)] == [1, 2, 3]
        raw = redis.Redis.from_url(redis_url)
        assert 0 < raw.ttl(key) <= 60
        raw.close()
    finally:
        await cache.close()


async def test_disabled_cache_misses_without_touching_anything() -> None:
    cache = Cache(None, prefix="t", timeout_s=0.2, metrics=Metrics())
    assert not cache.enabled
    assert await cache.get_many(["a"]) == [None]
    assert await cache.hit_window("w", 60) is None
    await cache.ping()


async def test_concurrent_callers_share_one_pipeline(redis_url: str) -> None:
    target = urlsplit(redis_url)
    proxy = Proxy(target.hostname or "127.0.0.1", target.port or 6379)
    cache = Cache(
        f"redis://127.0.0.1:{proxy.port}{target.path}",
        prefix=f"t-{uuid.uuid4().hex}",
        timeout_s=0.5,
        metrics=Metrics(),
    )
    try:
        keys = [cache.key("pred", str(i)) for i in range(50)]
        await cache.set_many({key: i for i, key in enumerate(keys) if i % 2}, ttl_s=30)
        answers = await asyncio.gather(
            *(cache.get_many([key]) for key in keys),
            *(cache.hit_window(cache.key("ratelimit", "k"), 60) for _ in range(10)),
        )
        connections = len(proxy.connections) // 2
        proxy.cut()
        after = await asyncio.gather(*(cache.get_many([key]) for key in keys))
    finally:
        await cache.close()
    assert answers[:50] == [[i if i % 2 else None] for i in range(50)]
    assert sorted(answers[50:]) == list(range(1, 11)), "each caller its own count"
    assert connections == 1, "sixty concurrent callers, one connection: one pipeline"
    assert after == [[None]] * 50


async def test_callers_reading_the_same_keys_in_one_turn_each_get_their_own_answer(
    redis_url: str,
) -> None:
    cache = Cache(redis_url, prefix=f"t-{uuid.uuid4().hex}", timeout_s=0.5, metrics=Metrics())
    try:
        a, b, c = (cache.key("token", name) for name in "abc")
        await cache.set_many({a: "A", c: "C"}, ttl_s=30)
        answers = await asyncio.gather(
            cache.get_many([a, b]),
            cache.get_many([b, c]),
            cache.get_many([a]),
            cache.get_many([c, a, c]),
        )
    finally:
        await cache.close()
    assert answers == [["A", None], [None, "C"], ["A"], ["C", "A", "C"]]


async def test_a_value_written_by_json_is_read_and_an_unreadable_one_is_a_miss(
    redis_url: str,
) -> None:
    """orjson writes and reads the values; one `json` wrote before (NaN is not JSON, `json` writes
    it anyway) is still read; bytes that are no JSON at all are a miss, never an error."""
    metrics = Metrics()
    cache = Cache(redis_url, prefix=f"t-{uuid.uuid4().hex}", timeout_s=0.5, metrics=metrics)
    raw = redis.Redis.from_url(redis_url)
    try:
        nan, broken, big = cache.key("nan"), cache.key("broken"), cache.key("big")
        raw.set(nan, b"[NaN]")
        raw.set(broken, b"\xff{not json")
        (value, missing) = await cache.get_many([nan, broken])
        assert math.isnan(value[0])
        assert missing is None
        assert (counter(metrics, "get", "hit"), counter(metrics, "get", "miss")) == (1, 1)
        await cache.set_many({nan: [math.nan]}, ttl_s=30)  # null, as the API answers NaN
        await cache.set_many({big: [2**70]}, ttl_s=30)  # past orjson: written by json
        assert (raw.get(nan), raw.get(big)) == (b"[null]", b"[1180591620717411303424]")
        assert await cache.get_many([nan, big]) == [[None], [2**70]]
    finally:
        raw.close()
        await cache.close()
