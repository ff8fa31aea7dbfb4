"""The Python client of the Hokusai ML Platform API.

from hokusai import HokusaiClient
client = HokusaiClient()   # HOKUSAI_API_KEY / HOKUSAI_BASE_URL, or ~/.hokusai/config
"""

from hokusai._client import AsyncHokusaiClient, HokusaiClient
from hokusai._compat import setup
from hokusai._version import __version__
from hokusai.datasets import dataset_hash
from hokusai.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    HokusaiError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
    UnprocessableEntityError,
)
from hokusai.verification import Recompute, VerifyReport, verify

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncHokusaiClient",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "HokusaiClient",
    "HokusaiError",
    "InternalServerError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "Recompute",
    "ServiceUnavailableError",
    "UnprocessableEntityError",
    "VerifyReport",
    "__version__",
    "dataset_hash",
    "setup",
    "verify",
]
