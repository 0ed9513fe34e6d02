"""Which network addresses a URL from a client may make the service connect to.

A URL given to the service (a video to fetch, a camera to read) makes the server open a
connection. Unchecked, a client could have it read a cloud metadata endpoint, an admin page on
localhost or any host of the private network behind it (server-side request forgery). A host is
therefore resolved and *every* address it resolves to is checked; whoever connects then uses one
of the checked addresses, never the name resolved a second time (a DNS answer that changes
between check and connection, DNS rebinding, cannot slip through).
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from service.errors import UnprocessableError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud instance metadata (AWS, GCP, Azure, ...; fd00:ec2::254 is AWS's IPv6 one): refused even
# inside an allowed network, since it hands out the host's credentials.
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv6 addresses that a NAT64 gateway turns into IPv4 ones


class UrlNotAllowedError(UnprocessableError):
    code = "url_not_allowed"


def _as_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one stands for (``::ffff:127.0.0.1``, 6to4, NAT64), else the address itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if (embedded := address.ipv4_mapped or address.sixtofour) is not None:
            return embedded
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: not loopback, link-local, private (RFC 1918, ULA), shared (CGNAT),
    documentation, multicast, unspecified or reserved."""
    return address.is_global and not (
        address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses (when ``public``) plus the ``allowed`` networks, never a metadata endpoint.

    ``setting`` names the variable that lists ``allowed``, for the refusal's message.
    """

    allowed: tuple[IPNetwork, ...]
    public: bool
    setting: str

    def permits(self, address: IPAddress) -> bool:
        address = _as_ipv4(address)
        if address in METADATA_ADDRESSES:
            return False
        return (self.public and is_public(address)) or any(address in network for network in self.allowed)

    def refusal(self, shown: str) -> UrlNotAllowedError:
        scope = f"public addresses and {self.setting}" if self.public else self.setting
        return UrlNotAllowedError(f"{shown} leads to an address this service may not connect to (only {scope})")


def resolve(host: str) -> list[IPAddress]:
    """Every address ``host`` resolves to (an IP literal is itself); empty when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


def checked_addresses(host: str, policy: AddressPolicy, shown: str) -> list[IPAddress]:
    """The addresses of ``host``, every one permitted; 422 ``url_not_allowed`` when one is not.

    ``shown`` is how messages name the URL (with its password redacted).
    """
    addresses = resolve(host)
    if not addresses:
        raise UnprocessableError(f"{shown}: the host name does not resolve", code="source_unreachable")
    if not all(policy.permits(address) for address in addresses):
        raise policy.refusal(shown)
    return addresses


def check_url_host(url: str, policy: AddressPolicy, shown: str) -> None:
    """Refuse ``url`` unless its host resolves only to addresses the policy permits."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    if not host:
        raise policy.refusal(shown)
    checked_addresses(host, policy, shown)
