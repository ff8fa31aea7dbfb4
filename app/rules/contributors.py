"""Contributors: Ethereum addresses checked with real EIP-55 (Keccak-256), and weights turned
into basis points that sum to exactly 10000 by the largest remainder.

Rules: docs/reference/specification.md#contributors."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

from eth_utils.address import is_checksum_address, to_checksum_address

from app.core.errors import InvalidAddress
from app.schemas.common import ADDRESS as ADDRESS_PATTERN

TOTAL_BPS = 10_000
ADDRESS = re.compile(ADDRESS_PATTERN)


def normalize_address(address: str) -> str:
    """The lowercase form to store. All-lowercase or all-uppercase hex is taken as is; mixed case
    must be a valid EIP-55 checksum."""
    if not ADDRESS.match(address):
        raise InvalidAddress(f"{address!r} is not 0x followed by 40 hex digits")
    digits = address[2:]
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(address):
        raise InvalidAddress(f"{address!r} has mixed case but is not a valid EIP-55 checksum")
    return "0x" + digits.lower()


@functools.lru_cache(maxsize=65_536)
def checksummed(address: str) -> str:
    """EIP-55 form of a stored (lowercase) address; Keccak-256 is not free, and addresses repeat."""
    return str(to_checksum_address(address))


def basis_points(weights: Sequence[tuple[str, Decimal]]) -> dict[str, int]:
    """Largest remainder: floor each exact share of 10000, then one more point each to the largest
    fractional remainders, ties broken by address ascending. Exact rational arithmetic."""
    total = sum((Fraction(weight) for _, weight in weights), Fraction(0))
    shares = {address: Fraction(weight) * TOTAL_BPS / total for address, weight in weights}
    points = {address: int(share) for address, share in shares.items()}
    leftover = TOTAL_BPS - sum(points.values())
    by_remainder = sorted(shares, key=lambda address: (-(shares[address] % 1), address))
    for address in by_remainder[:leftover]:
        points[address] += 1
    return points
