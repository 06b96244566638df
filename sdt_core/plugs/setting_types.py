"""Setting types that check more than Python's: host names and network addresses.

A plug annotates a setting with one of these (`host: Host = setting("127.0.0.1", ...)`) and
sdt-core refuses, in one line and before anything starts, a value that is not one: a typo
in an address fails at validation, not as a traceback from the backend's socket call.
"""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
LOOPBACK_NAMES = ("localhost",)


class Host(str):
    """A host name (RFC 1123) or an IP address."""

    expected = "a host name or an IP address"

    @classmethod
    def sdt_check(cls, value: object) -> Host:
        if not isinstance(value, str):
            raise TypeError(value)
        text = value.strip("[]")
        try:
            ipaddress.ip_address(text)
            return cls(value)
        except ValueError:
            pass
        labels = text.rstrip(".").split(".")
        if len(text) > 253 or not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
            raise ValueError(value)  # 999.1.1.1 included: all-numeric, but no IPv4 address
        return cls(value)

    @property
    def is_loopback(self) -> bool:
        """Whether only this machine can reach it."""
        text = self.strip("[]")
        try:
            return ipaddress.ip_address(text).is_loopback
        except ValueError:
            return text.lower() in LOOPBACK_NAMES


class Address(str):
    """`host:port`, `[ipv6]:port`, `:port` or `port` (the backend's default host), port 0-65535."""

    expected = "an address host:port, :port or port, with a port from 0 to 65535"

    @classmethod
    def sdt_check(cls, value: object) -> Address:
        if not isinstance(value, str):
            raise TypeError(value)
        host, sep, port = value.rpartition(":")
        if not port.isdigit() or not 0 <= int(port) <= 65535 or (host and not sep):
            raise ValueError(value)
        if host:
            Host.sdt_check(host)
        return cls(value)

    @property
    def host(self) -> Host | None:
        """The host part, or None for `:port`."""
        host = self.rpartition(":")[0]
        return Host(host) if host else None
