"""S9: the portal's own outbound connections go only to AWS endpoints, the local runtime and
the team's alert webhook.

Every boto3 call leaves through urllib3, which opens its sockets with
`urllib3.util.connection.create_connection`. `install` (run by the app's `ready`, so in the web
server, the Celery worker and beat, and every other manage.py command) puts
`guarded_create_connection` in its place. It resolves the host once, checks every address the
answer holds, and connects to exactly those addresses, so no second DNS answer (rebinding) can
come between the check and the connect. A connection may go to:

- an AWS endpoint name on port 443 (the DNS suffixes of botocore's partitions for the Regions
  `environments.validators.validate_region` accepts outside the isolated ones), when every
  address it resolves to is public;
- the host and port of LOCAL_RUNTIME_URL, whatever they resolve to (loopback on a laptop, the
  compose network in production);
- a "host:port" listed in PORTAL_OUTBOUND_ALLOW (an HTTPS proxy, the private DNS name of a VPC
  interface endpoint);
- the host and port of PORTAL_ALERT_WEBHOOK_URL (the team's chat webhook, set by whoever runs
  the portal);
- the credential endpoints of botocore's default chain (instance profile, ECS and EKS task
  roles), by their literal addresses only: a name that resolves to them is still refused.

Anything else fails as a refused connection: botocore reports it as an EndpointConnectionError,
which `aws.provider_error` words for the user, and the `portal.security` log names the host and
why. The runtime process installs the guard too and is unaffected: it calls its model processes
through aiohttp, not urllib3.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from urllib.parse import urlsplit

import urllib3.util.connection
from django.conf import settings

log = logging.getLogger("portal.security")

# botocore/data/partitions.json: dnsSuffix and dualStackDnsSuffix of the aws, aws-us-gov and
# aws-cn partitions (the dual-stack names only if AWS_USE_DUALSTACK_ENDPOINT is set).
AWS_DNS_SUFFIXES = (
    ".amazonaws.com",
    ".amazonaws.com.cn",
    ".api.aws",
    ".api.amazonwebservices.com.cn",
)
AWS_PORT = 443
# botocore/utils.py: IMDS (IPv4 and IPv6), the ECS task role endpoint, EKS Pod Identity.
CREDENTIAL_ENDPOINTS = frozenset(
    {
        ("169.254.169.254", 80),
        ("fd00:ec2::254", 80),
        ("169.254.170.2", 80),
        ("169.254.170.23", 80),
        ("fd00:ec2::23", 80),
    }
)
DEFAULT_PORTS = {"http": 80, "https": 443}
# NAT64 (RFC 6052) reaches the IPv4 address in its last 32 bits, so that address is the one
# to judge; Python's ipaddress calls the whole prefix global.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NOT_ALLOWED = "not an AWS endpoint or the runtime URL"

unguarded_create_connection = urllib3.util.connection.create_connection


class OutboundRefused(ConnectionError):
    """A connection S9 does not allow. An OSError, so urllib3 and botocore treat it as a
    connection that failed, like a refused port."""


def install() -> None:
    """Guard every urllib3 connection this process makes. Safe to call again."""
    urllib3.util.connection.create_connection = guarded_create_connection


def guarded_create_connection(
    address: tuple[str, int],
    timeout: object,
    source_address: tuple[str, int] | None = None,
    socket_options: list[tuple] | None = None,
) -> socket.socket:
    """urllib3's `create_connection`, checking each address before connecting to it."""
    if not settings.PORTAL_OUTBOUND_GUARD:
        return unguarded_create_connection(address, timeout, source_address, socket_options)
    host, port = address
    host = host.strip("[]")
    found = socket.getaddrinfo(
        host, port, urllib3.util.connection.allowed_gai_family(), socket.SOCK_STREAM
    )
    for *_, sockaddr in found:
        reason = refusal(host, port, sockaddr[0])
        if reason:
            message = f"outbound connection to {sockaddr[0]} ({host}:{port}) refused: {reason}"
            log.warning(message)
            raise OutboundRefused(message)
    return connect(found, timeout, source_address, socket_options)


def refusal(host: str, port: int, address: str) -> str | None:
    """Why the portal may not connect to `address`, which `host` resolved to; None if it may."""
    place = (normal(host), port)
    if place in allowed_places() or place in CREDENTIAL_ENDPOINTS:
        return None
    if port != AWS_PORT or not place[0].endswith(AWS_DNS_SUFFIXES):
        return NOT_ALLOWED
    if not is_public(address):
        return (
            "an AWS endpoint name that resolves to a non-public address (list a VPC "
            "endpoint's name in PORTAL_OUTBOUND_ALLOW)"
        )
    return None


def allowed_places() -> set[tuple[str, int]]:
    """The runtime URL's host and port, PORTAL_OUTBOUND_ALLOW's and the alert webhook's, read
    now: tests and `override_settings` change them while the process runs."""
    runtime = urlsplit(settings.LOCAL_RUNTIME_URL)
    places = {(normal(runtime.hostname or ""), runtime.port or DEFAULT_PORTS.get(runtime.scheme))}
    places.update(filter(None, map(place, settings.PORTAL_OUTBOUND_ALLOW)))
    webhook = urlsplit(settings.PORTAL_ALERT_WEBHOOK_URL)
    if webhook.hostname:
        places.add((normal(webhook.hostname), webhook.port or DEFAULT_PORTS.get(webhook.scheme)))
    return places


def place(entry: str) -> tuple[str, int] | None:
    """("proxy.internal", 3128) from "proxy.internal:3128" or "[::1]:8080"; None if the entry
    is not host:port (portal/checks.py reports it)."""
    host, _, port = entry.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return normal(host), int(port)


def normal(host: str) -> str:
    """A host as the rules compare it: lower case, no brackets or final dot, IPs compressed."""
    host = host.strip("[]").rstrip(".").lower()
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host


def is_public(address: str) -> bool:
    """Whether `address` is on the public internet: not private, loopback, link-local (the
    instance metadata service), multicast, reserved or unspecified, also when it is an IPv4
    address inside an IPv6 one."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        ip = embedded or ip
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def connect(
    found: list[tuple],
    timeout: object,
    source_address: tuple[str, int] | None,
    socket_options: list[tuple] | None,
) -> socket.socket:
    """Connect to the first of the checked addresses that answers, as urllib3 would."""
    error: OSError = OSError("getaddrinfo returns an empty list")
    for family, kind, protocol, _, sockaddr in found:
        sock = socket.socket(family, kind, protocol)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            # urllib3 passes a sentinel for "leave the socket's default timeout".
            if timeout is None or isinstance(timeout, int | float):
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as failed:
            error = failed
            sock.close()
    raise error
