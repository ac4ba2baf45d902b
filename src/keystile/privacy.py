"""What of a client's network address is kept in the audit log (pure).

Modes:

- ``none``: the address as given;
- ``hash``: a keyed hash (first 32 hex digits of HMAC-SHA256), so one
  address can be correlated across events without being stored;
- ``truncate``: the network only (IPv4 /24, IPv6 /48);
- ``exclude``: nothing.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from keystile.crypto.hashing import keyed_hash
from keystile.crypto.keyring import Key

AddressPrivacy = Literal["none", "hash", "truncate", "exclude"]


def protect_address(address: str | None, mode: AddressPrivacy, *, key: Key) -> str | None:
    """The form of ``address`` to store under privacy ``mode``."""
    if address is None or mode == "exclude":
        return None
    if mode == "none":
        return address[:128]
    if mode == "hash":
        return keyed_hash(key, "client-address", address)[:32]
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None  # not an IP (a test client's name): nothing sensible to truncate
    prefix = 24 if parsed.version == 4 else 48
    return str(ipaddress.ip_network(f"{parsed}/{prefix}", strict=False))
