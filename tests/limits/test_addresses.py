"""Client-address buckets: IPv4 as is, IPv6 by its /64, anything else bounded."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keystile.limits.addresses import MAX_BUCKET_LENGTH, address_bucket


@pytest.mark.parametrize(
    ("address", "bucket"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("127.0.0.1", "127.0.0.1"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2:0:0:0:9", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::1", "::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("testclient", "testclient"),
        ("", ""),
    ],
)
def test_known_buckets(address: str, bucket: str) -> None:
    """Examples of each rule."""
    assert address_bucket(address) == bucket


def test_unparsable_input_is_length_bounded() -> None:
    """A long forwarded-for value cannot make an unbounded limiter key."""
    assert address_bucket("x" * 10_000) == "x" * MAX_BUCKET_LENGTH


@given(st.ip_addresses(v=4))
def test_ipv4_is_its_own_bucket(address: ipaddress.IPv4Address) -> None:
    """Every IPv4 address is its own bucket, alone or mapped into IPv6."""
    assert address_bucket(str(address)) == str(address)
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    assert address_bucket(str(mapped)) == str(address)
    assert address_bucket(mapped.exploded) == str(address)


@given(st.ip_addresses(v=6), st.integers(min_value=0, max_value=2**64 - 1))
def test_ipv6_addresses_share_a_bucket_exactly_within_one_64(
    address: ipaddress.IPv6Address, host: int
) -> None:
    """Any two addresses of one /64 share a bucket; the bucket is that network."""
    if address.ipv4_mapped is not None:
        return
    network = ipaddress.IPv6Network((int(address) >> 64 << 64, 64))
    neighbour = ipaddress.IPv6Address(int(network.network_address) | host)
    assert address_bucket(str(address)) == address_bucket(neighbour.exploded) == str(network)


@given(st.ip_addresses(v=6), st.ip_addresses(v=6))
def test_ipv6_addresses_of_different_64s_do_not_share(
    first: ipaddress.IPv6Address, second: ipaddress.IPv6Address
) -> None:
    """Buckets of two different /64 networks differ."""
    if first.ipv4_mapped is not None or second.ipv4_mapped is not None:
        return
    same_network = int(first) >> 64 == int(second) >> 64
    assert (address_bucket(str(first)) == address_bucket(str(second))) == same_network


@given(st.text(max_size=300))
def test_any_text_gives_a_bounded_bucket(text: str) -> None:
    """Never raises, never longer than the bound; a non-address is kept as is (cut to the bound)."""
    bucket = address_bucket(text)
    assert len(bucket) <= MAX_BUCKET_LENGTH
    try:
        ipaddress.ip_address(text)
    except ValueError:
        assert bucket == text[:MAX_BUCKET_LENGTH]
