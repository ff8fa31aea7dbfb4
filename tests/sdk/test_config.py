"""Where the client's configuration comes from, and that it never shows the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hokusai import ConfigurationError, HokusaiClient

KEY = "hk_" + "s" * 40


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for variable in (
        "HOKUSAI_API_KEY",
        "HOKUSAI_BASE_URL",
        "HOKUSAI_API_URL",
        "HOKUSAI_API_ENDPOINT",
        "HOKUSAI_PROFILE",
    ):
        monkeypatch.delenv(variable, raising=False)
    config = tmp_path / "config"
    monkeypatch.setenv("HOKUSAI_CONFIG_FILE", str(config))
    return config


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOKUSAI_API_KEY", "hk_" + "e" * 40)
    monkeypatch.setenv("HOKUSAI_BASE_URL", "http://env:1")
    client = HokusaiClient("http://arg:2", KEY)
    assert client.base_url == "http://arg:2"
    assert client._api_key == KEY


@pytest.mark.parametrize(
    "variable", ["HOKUSAI_BASE_URL", "HOKUSAI_API_URL", "HOKUSAI_API_ENDPOINT"]
)
@pytest.mark.parametrize("suffix", ["", "/", "/api", "/api/v1", "/api/v1/"])
def test_the_environment_and_legacy_names_and_api_suffixes(
    monkeypatch: pytest.MonkeyPatch, variable: str, suffix: str
) -> None:
    monkeypatch.setenv("HOKUSAI_API_KEY", KEY)
    monkeypatch.setenv(variable, f"https://hokusai.example{suffix}")
    assert HokusaiClient().base_url == "https://hokusai.example"


def test_the_config_file_and_its_profiles(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path
) -> None:
    clean_environment.write_text(
        f"[default]\napi_key = {KEY}\nbase_url = http://default:1\n\n"
        f"[staging]\napi_key = hk_{'t' * 40}\nbase_url = http://staging:2/api\n"
    )
    assert HokusaiClient().base_url == "http://default:1"
    monkeypatch.setenv("HOKUSAI_PROFILE", "staging")
    assert HokusaiClient().base_url == "http://staging:2"
    monkeypatch.setenv("HOKUSAI_PROFILE", "nope")
    with pytest.raises(ConfigurationError, match="nope"):
        HokusaiClient()


def test_no_key_anywhere_names_hokusai_api_key() -> None:
    with pytest.raises(ConfigurationError, match="HOKUSAI_API_KEY"):
        HokusaiClient("http://127.0.0.1:1")


def test_the_key_never_shows_and_the_constructor_does_no_io() -> None:
    client = HokusaiClient("http://127.0.0.1:1", KEY)  # nothing listens there: no error yet
    assert KEY not in repr(client) + str(client)


def test_dataset_hash_of_bytes_files_and_frames(tmp_path: Path) -> None:
    import hashlib

    import pandas as pd
    from hokusai import dataset_hash

    rows = b"a,b\n1,2\n3,4\n"
    expected = "sha256:" + hashlib.sha256(rows).hexdigest()
    assert dataset_hash(rows) == expected
    (tmp_path / "bench.csv").write_bytes(rows)
    assert dataset_hash(tmp_path / "bench.csv") == expected
    assert dataset_hash(str(tmp_path / "bench.csv")) == expected
    assert dataset_hash(pd.DataFrame({"a": [1, 3], "b": [2, 4]})) == expected
    assert dataset_hash(pd.DataFrame({"b": [2, 4], "a": [1, 3]})) != expected
    with pytest.raises(TypeError, match="not int"):
        dataset_hash(42)


def test_a_model_directory_packs_to_the_same_bytes_every_time(tmp_path: Path) -> None:
    """A pipeline step re-run packs again: the bytes must match for its Idempotency-Key."""
    import os
    import time

    from hokusai._artifacts import packed

    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "model.pkl").write_bytes(b"\x00weights")
    first = packed(tmp_path)
    time.sleep(1.1)  # gzip and tar both record times by default
    os.utime(tmp_path / "MLmodel")
    assert packed(tmp_path) == first


@pytest.mark.parametrize(
    ("request_id", "idempotency_key"),
    [("gtm\r\nX-Injected: 1", None), ("x" * 129, None), ("ok-id", "key\nwith a break"), ("ok", "")],
)
def test_a_header_the_service_would_not_keep_is_refused_before_sending(
    request_id: str, idempotency_key: str | None
) -> None:
    """Not sent, not retried, not reported as an unreachable service (port 9 is closed)."""
    from hokusai._base import Call

    client = HokusaiClient("http://127.0.0.1:9", "hk_" + "x" * 40, max_retries=5)
    call: Call[None] = Call(
        "POST",
        "/api/v1/api-keys",
        lambda r: None,
        request_id=request_id,
        idempotency_key=idempotency_key,
        repeatable=True,
    )
    with pytest.raises(ConfigurationError, match="not one the service accepts"):
        client._run(call)
    with pytest.raises(ConfigurationError, match="X-Request-ID"):
        client.predict("m", {"a": 1}, request_id="two words")


def test_an_empty_api_key_is_refused_not_replaced_by_the_saved_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOKUSAI_API_KEY", "hk_" + "s" * 40)
    for empty in ("", "  "):
        with pytest.raises(ConfigurationError, match="api_key is empty"):
            HokusaiClient(api_key=empty)
    assert HokusaiClient()._api_key == "hk_" + "s" * 40  # left out: the configured one
