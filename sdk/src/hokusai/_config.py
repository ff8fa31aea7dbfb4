"""Where the client's base URL and key come from: the argument, else the environment, else
`~/.hokusai/config`. Read once, in the constructor, without any network I/O."""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path

from hokusai.errors import ConfigurationError

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
CONFIG_FILE = Path("~/.hokusai/config")
BASE_URL_VARIABLES = ("HOKUSAI_BASE_URL", "HOKUSAI_API_URL", "HOKUSAI_API_ENDPOINT")


@dataclass(frozen=True)
class Config:
    base_url: str
    api_key: str

    def __repr__(self) -> str:  # the key never shows
        return f"Config(base_url={self.base_url!r}, api_key='***')"


def resolve(base_url: str | None, api_key: str | None) -> Config:
    if api_key is not None and not api_key.strip():
        # An empty key is a mistake (an unset variable read as ""), not a request for the
        # saved one: using another key silently would act as someone else.
        raise ConfigurationError(
            "api_key is empty; pass a key, or leave it out to use the saved one"
        )
    profile = _profile()
    key = api_key or os.environ.get("HOKUSAI_API_KEY") or profile.get("api_key")
    if not key:
        raise ConfigurationError(
            "No API key: pass api_key=, set HOKUSAI_API_KEY, or run `hokusai login` "
            f"(writes {CONFIG_FILE})"
        )
    url = (
        base_url
        or next((os.environ[v] for v in BASE_URL_VARIABLES if os.environ.get(v)), None)
        or profile.get("base_url")
        or DEFAULT_BASE_URL
    )
    return Config(base_url=service_root(url), api_key=key)


def service_root(url: str) -> str:
    """The service's root, also from a URL ending in `/api` or `/api/v1` (GTM-backend's
    configuration ends in `/api`)."""
    root = url.strip().rstrip("/")
    for suffix in ("/api/v1", "/api"):
        if root.endswith(suffix):
            root = root[: -len(suffix)]
            break
    if not root.startswith(("http://", "https://")):
        raise ConfigurationError(f"The base URL must start with http:// or https://, not {url!r}")
    return root


def _profile() -> dict[str, str]:
    path = Path(os.environ.get("HOKUSAI_CONFIG_FILE", str(CONFIG_FILE))).expanduser()
    if not path.is_file():
        return {}
    parser = configparser.ConfigParser()
    parser.read(path)
    section = os.environ.get("HOKUSAI_PROFILE", "default")
    if not parser.has_section(section):
        if section != "default":
            raise ConfigurationError(f"No [{section}] section in {path} (HOKUSAI_PROFILE)")
        return {}
    return dict(parser.items(section))
