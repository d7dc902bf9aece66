"""Which addresses a webhook may be sent to, and how a webhook URL is shown: pure (no I/O), imports nothing of ours.

An address is judged by what a connection to it would reach. Every IPv6 form that carries an IPv4 address
(IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`, Teredo
`2001::/32` with its XOR-ed client address) is judged by the IPv4 address it embeds, and every spelling of an IPv4
address that the C resolver accepts (`2852039166`, `0xa9fea9fe`, `0251.0376.0251.0376`, `127.1`) by the address
it means. Each address falls in one class:

- `loopback` (127/8, ::1, the names `localhost`, `*.localhost`, `localhost.localdomain`,
  `host.docker.internal`): refused while `disable_loopback`;
- `private` (RFC 1918, shared 100.64/10, unique-local fc00::/7, deprecated site-local fec0::/10): refused while
  `disable_private_ips`;
- `reserved` (link-local with the cloud metadata addresses, multicast, unspecified, documentation, benchmarking
  and other non-global ranges, local-use NAT64 `64:ff9b:1::/48` whose layout cannot be known, the metadata host
  names): always refused, as the reference does;
- `public`: allowed.

`check_url` applies the URL policy of langgraph.json's `webhooks.url` (the reference's field names) and what can
be told without DNS; `check_address` judges each address a name resolves to, for the sender, which connects only
to an address it has judged. `redact_url` hides userinfo and secret-looking query values for logs and for the
run objects returned to callers.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Kind = Literal["public", "loopback", "private", "reserved"]

# RFC 1918 and shared 100.64/10; unique-local and deprecated site-local. An address is never in a network of the
# other IP version, so one tuple serves both.
_PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7", "fec0::/10")
)
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
_TEREDO = ipaddress.IPv6Network("2001::/32")

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "host.docker.internal"})
# Cloud metadata services on addresses that would otherwise count as private (Alibaba's in shared space, AWS's
# IPv6 one in unique-local space): never targets, like the link-local 169.254.169.254.
_METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("100.100.100.200", "fd00:ec2::254"))
_METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "metadata.amazonaws.com", "instance-data"})
# Query parameter names whose values are treated as secrets when a URL is shown (matched as substrings).
_SECRET_PARAM = re.compile(
    r"token|secret|passw|pwd|key|sig|auth|credential|session|code|hmac|private|bearer", re.IGNORECASE
)
_REDACTED = "***"
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class WebhookUrlPolicy:
    """The webhook URL policy: langgraph.json `webhooks.url` (the reference's names) and crongraph's settings.

    `allowed_domains`: exact host names, or `*.example.com` for its subdomains (not the apex); empty allows any.
    `allowed_ports`: empty allows any; a URL without a port has 80 (http) or 443 (https).
    `max_url_length`: in characters. Defaults: crongraph's (loopback and private targets refused;
    `CRONGRAPH_WEBHOOK_ALLOW_PRIVATE=true` allows both); reserved addresses are refused whatever the policy.
    """

    require_https: bool = False
    allowed_domains: tuple[str, ...] = ()
    allowed_ports: tuple[int, ...] = ()
    max_url_length: int = 4096
    disable_loopback: bool = True
    disable_private_ips: bool = True
    # langgraph.json `http.disable_webhooks`: no webhook is sent, so naming one is refused rather than ignored.
    disabled: bool = False

    @classmethod
    def build(cls, url: Any = None, *, allow_private: bool = False, disabled: bool = False) -> WebhookUrlPolicy:
        """The policy from langgraph.json's `webhooks.url` (any object with the reference's field names; None when
        the file has no such block: crongraph's defaults) and CRONGRAPH_WEBHOOK_ALLOW_PRIVATE (`allow_private`),
        which lifts the loopback and private refusals whatever the file says."""
        if url is None:
            return cls(disable_loopback=not allow_private, disable_private_ips=not allow_private, disabled=disabled)
        return cls(
            disabled=disabled,
            require_https=bool(url.require_https),
            allowed_domains=tuple(url.allowed_domains or ()),
            allowed_ports=tuple(url.allowed_ports or ()),
            max_url_length=int(url.max_url_length),
            disable_loopback=bool(url.disable_loopback) and not allow_private,
            disable_private_ips=bool(url.disable_private_ips) and not allow_private,
        )

    def refuses(self, kind: Kind) -> bool:
        return kind == "reserved" or (
            (kind == "loopback" and self.disable_loopback) or (kind == "private" and self.disable_private_ips)
        )


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses a connection to `ip` may reach (empty when it carries none)."""
    if ip in _MAPPED:
        return [ipaddress.IPv4Address(ip.packed[-4:])]
    if ip in _NAT64:
        return [ipaddress.IPv4Address(ip.packed[-4:])]
    if ip in _SIX_TO_FOUR:
        return [ipaddress.IPv4Address(ip.packed[2:6])]
    if ip in _TEREDO:
        teredo = ip.teredo
        assert teredo is not None
        return [teredo[1]]  # the client, whose address and port Teredo stores XOR-ed; ipaddress undoes that
    if ip in _COMPATIBLE and int(ip) > 1:  # not :: or ::1, which are IPv6 addresses in their own right
        return [ipaddress.IPv4Address(ip.packed[-4:])]
    return []


# The class of an address taken as it is (no embedded IPv4 looked at): the first row whose test holds, else public.
# Metadata addresses come first because they sit in shared or unique-local space that would read as private.
_CLASSES: tuple[tuple[Kind, Callable[[Address], bool]], ...] = (
    ("reserved", lambda ip: ip in _METADATA_ADDRESSES),
    ("loopback", lambda ip: ip.is_loopback),  # 127/8 and ::1
    ("private", lambda ip: any(ip in net for net in _PRIVATE)),
    ("reserved", lambda ip: not ip.is_global or ip.is_multicast),
)


def _kind_as_is(ip: Address) -> Kind:
    return next((kind for kind, holds in _CLASSES if holds(ip)), "public")


_RANK: dict[Kind, int] = {"public": 0, "loopback": 1, "private": 2, "reserved": 3}


def classify(ip: Address) -> Kind:
    """The class of an address, judging an IPv6 address that embeds IPv4 by the (strictest) embedded one."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _kind_as_is(ip)
    if ip.scope_id:
        ip = ipaddress.IPv6Address(ip.compressed.split("%", 1)[0])
    if ip in _NAT64_LOCAL:
        # Local-use NAT64 (RFC 8215) puts the IPv4 address where the operator's prefix length says, which cannot
        # be known here, and is never a public route: refused outright, as the reference does.
        return "reserved"
    embedded = _embedded_ipv4(ip)
    if embedded:
        return max((_kind_as_is(v4) for v4 in embedded), key=_RANK.__getitem__)
    return _kind_as_is(ip)


def literal_address(host: str) -> Address | None:
    """The address a URL host denotes without DNS: an IP literal, or any IPv4 spelling the C resolver accepts
    (decimal, octal, hex, fewer than four parts); None for a name."""
    host = host.rstrip(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # Only digits, dots and hex letters with an x can be a numeric IPv4 spelling; anything else is a name. The
    # resolver's own parser (inet_aton, no I/O) decides what such a spelling means, so the check agrees with it.
    if not host or not re.fullmatch(r"[0-9a-fA-FxX.]+", host) or not host[0].isdigit():
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _describe(kind: Kind) -> str:
    return {
        "loopback": "a loopback address",
        "private": "a private address",
        "reserved": "a link-local, multicast or reserved address",
        "public": "a public address",
    }[kind]


def check_address(address: str | Address, policy: WebhookUrlPolicy, *, shown: str = "") -> str | None:
    """Why a webhook may not connect to `address` (an IP, e.g. from getaddrinfo), or None when it may."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    kind = classify(ip)
    if not policy.refuses(kind):
        return None
    return _refusal(shown or str(ip), kind, ip)


def _refusal(shown: str, kind: Kind, ip: Address | None) -> str:
    what = f"{shown} is {_describe(kind)}"
    if ip is not None and str(ip) != shown.strip("[]"):
        what = f"{shown} is {ip}, {_describe(kind)}"
    if kind == "reserved":
        return f"Webhook URL refused: {what}; these are never webhook targets"
    return f"Webhook URL refused: {what} (loopback or private); set CRONGRAPH_WEBHOOK_ALLOW_PRIVATE=true to allow it"


def check_url(url: str, policy: WebhookUrlPolicy) -> str | None:
    """Why `url` cannot be a webhook target as far as can be told without DNS, or None when it can.

    The reason names the problem: too long, not absolute http(s), https required, port or domain not allowed,
    a host that is (or spells) a refused address or a loopback/metadata name."""
    if policy.disabled:
        return "Webhooks are disabled on this server (langgraph.json http.disable_webhooks); remove the webhook"
    if len(url) > policy.max_url_length:
        return f"Webhook URL too long: {len(url)} characters, at most {policy.max_url_length}"
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"Invalid webhook URL {shown!r}: {exc}"
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return f"Invalid webhook URL {shown!r}: expected an absolute http:// or https:// URL"
    if port == 0:
        return f"Invalid webhook URL {shown!r}: port 0"
    if policy.require_https and scheme != "https":
        return f"Webhook URL {shown!r} refused: the webhook policy requires https"
    port = port or _DEFAULT_PORTS[scheme]
    if policy.allowed_ports and port not in policy.allowed_ports:
        allowed = ", ".join(map(str, policy.allowed_ports))
        return f"Webhook URL {shown!r} refused: port {port} is not allowed (allowed: {allowed})"
    host = parts.hostname.rstrip(".").lower()
    if policy.allowed_domains and not domain_allowed(host, policy.allowed_domains):
        allowed = ", ".join(policy.allowed_domains)
        return f"Webhook URL {shown!r} refused: domain {host} is not allowed (allowed: {allowed})"
    ip = literal_address(host)
    if ip is not None:
        return check_address(ip, policy, shown=host)
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return None if not policy.refuses("loopback") else _refusal(host, "loopback", None)
    if host in _METADATA_NAMES:
        return _refusal(f"{host} (a cloud metadata name)", "reserved", None)
    return None


def domain_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    """Whether `host` matches an exact pattern or a `*.base` one (subdomains of base, not base itself)."""
    host = host.rstrip(".").lower()
    for pattern in patterns:
        p = pattern.strip().rstrip(".").lower()
        if p.startswith("*."):
            if host.endswith(p[1:]) and len(host) > len(p) - 1:
                return True
        elif host == p:
            return True
    return False


def redact_url(url: str) -> str:
    """`url` with its userinfo and the values of secret-looking query parameters replaced by `***`, for logs and
    for what callers are shown; the URL itself (used for delivery) is unchanged. Unparseable input is shown cut."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url[:64] + ("…" if len(url) > 64 else "")
    netloc = parts.netloc
    if "@" in netloc:
        netloc = _REDACTED + "@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_PARAM.search(name) for name, _ in pairs):
            query = urlencode(
                [(name, _REDACTED if _SECRET_PARAM.search(name) else value) for name, value in pairs], safe="*"
            )
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
