"""Client-address buckets: which addresses share one per-address limit.

An IPv4 address is one host's (or one NAT's) address, so it is its own
bucket. An IPv6 client usually holds a whole /64 (RFC 4291 §2.5.1 interface
identifiers; SLAAC privacy addresses change within it), so limiting single
IPv6 addresses would let one host rotate through 2^64 of them: its bucket is
the /64 network. An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``, as a
dual-stack listener reports IPv4 peers) is the IPv4 address it maps.
"""

from __future__ import annotations

import ipaddress
from typing import Final

#: Longest bucket kept for a value that is not an IP address (a limiter key stays bounded).
MAX_BUCKET_LENGTH: Final = 64

_HOST_BITS: Final = 64


def address_bucket(address: str) -> str:
    """The per-address limit bucket of ``address``.

    ``"203.0.113.7"`` → itself; ``"::ffff:203.0.113.7"`` → ``"203.0.113.7"``;
    ``"2001:db8:1:2::9"`` → ``"2001:db8:1:2::/64"`` (a zone id such as
    ``%eth0`` is dropped). Anything that is not an IP address (a Unix socket
    path, a test client's name) is returned unchanged, cut to
    :data:`MAX_BUCKET_LENGTH` characters. Pure; never raises.
    """
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:MAX_BUCKET_LENGTH]
    if isinstance(parsed, ipaddress.IPv4Address):
        return str(parsed)
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    network = int(parsed) >> _HOST_BITS << _HOST_BITS
    return str(ipaddress.IPv6Network((network, 128 - _HOST_BITS)))
