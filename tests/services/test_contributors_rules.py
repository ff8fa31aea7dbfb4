"""Contributor addresses (EIP-55) and basis points (largest remainder)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.errors import InvalidAddress
from app.rules.contributors import basis_points, checksummed, normalize_address

# The test vectors of EIP-55 itself.
EIP55 = [
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]


@pytest.mark.parametrize("address", EIP55)
def test_eip55_vectors_are_accepted_and_round_trip(address: str) -> None:
    stored = normalize_address(address)
    assert stored == address.lower()
    mixed = address[2:] != address[2:].lower() and address[2:] != address[2:].upper()
    if mixed:
        assert checksummed(stored) == address


@pytest.mark.parametrize("address", EIP55[4:])
def test_a_mixed_case_typo_fails_the_checksum(address: str) -> None:
    at = max(i for i, char in enumerate(address) if char in "abcdefABCDEF")
    flipped = address[:at] + address[at].swapcase() + address[at + 1 :]
    with pytest.raises(InvalidAddress):
        normalize_address(flipped)


@pytest.mark.parametrize(
    "address", ["0x123", "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0x" + "g" * 40, ""]
)
def test_malformed_addresses_are_refused(address: str) -> None:
    with pytest.raises(InvalidAddress):
        normalize_address(address)


def test_largest_remainder_with_ties_by_address() -> None:
    # Three equal weights: 3333.33 each; the one leftover point goes to the smallest address.
    points = basis_points([("0xc", Decimal(1)), ("0xa", Decimal(1)), ("0xb", Decimal(1))])
    assert points == {"0xa": 3334, "0xb": 3333, "0xc": 3333}
    assert basis_points([("0xa", Decimal(1)), ("0xb", Decimal(2))]) == {"0xa": 3333, "0xb": 6667}
    assert basis_points([("0xa", Decimal("0.000001"))]) == {"0xa": 10000}


addresses = st.lists(
    st.text("0123456789abcdef", min_size=40, max_size=40).map(lambda h: "0x" + h),
    min_size=1,
    max_size=256,
    unique=True,
)
weights = st.decimals(
    min_value=Decimal("1e-9"), max_value=Decimal("1e12"), allow_nan=False, places=9
)


@given(st.data())
def test_points_always_sum_to_10000_and_ignore_order(data: st.DataObject) -> None:
    chosen = data.draw(addresses)
    pairs = [(a, data.draw(weights.filter(lambda w: w > 0))) for a in chosen]
    points = basis_points(pairs)
    assert sum(points.values()) == 10_000
    assert all(p >= 0 for p in points.values())
    assert basis_points(list(reversed(pairs))) == points
    total = sum(w for _, w in pairs)
    for address, weight in pairs:  # never more than one point from the exact share
        assert abs(points[address] - weight * 10_000 / total) < 1
