"""The webhook address policy: every spelling of an address is judged by what it reaches, the URL policy of
langgraph.json's `webhooks.url`, and what callers and logs are shown of a webhook URL."""

from __future__ import annotations

import ipaddress
from types import SimpleNamespace

import pytest

from crongraph.webhook_policy import WebhookUrlPolicy, check_url, classify, literal_address, redact_url

STRICT = WebhookUrlPolicy()  # crongraph's default: loopback and private refused
OPEN = WebhookUrlPolicy(disable_loopback=False, disable_private_ips=False)  # CRONGRAPH_WEBHOOK_ALLOW_PRIVATE=true

# (host as written in a URL, the class of what it reaches)
ADDRESS_FORMS = [
    # plain IPv4 and IPv6
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "private"),
    ("169.254.169.254", "reserved"),
    ("0.0.0.0", "reserved"),
    ("224.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.7", "reserved"),
    ("[::1]", "loopback"),
    ("[fe80::1]", "reserved"),
    ("[fe80::1%25eth0]", "reserved"),
    ("[fd00::1]", "private"),
    ("[fd00:ec2::254]", "reserved"),  # AWS metadata over IPv6
    ("100.100.100.200", "reserved"),  # Alibaba metadata
    ("[fec0::1]", "private"),  # deprecated site-local
    ("[ff02::1]", "reserved"),
    ("[::]", "reserved"),
    ("[2001:db8::1]", "reserved"),
    # IPv4-mapped, IPv4-compatible
    ("[::ffff:10.0.0.1]", "private"),
    ("[::ffff:127.0.0.1]", "loopback"),
    ("[::ffff:a9fe:a9fe]", "reserved"),
    ("[::127.0.0.1]", "loopback"),
    ("[::a9fe:a9fe]", "reserved"),
    ("[::10.1.2.3]", "private"),
    # NAT64, well-known /96 and local-use /48 (either layout)
    ("[64:ff9b::a9fe:a9fe]", "reserved"),
    ("[64:ff9b::7f00:1]", "loopback"),
    ("[64:ff9b::10.0.0.1]", "private"),
    ("[64:ff9b::5db8:d822]", "public"),
    ("[64:ff9b:1::a9fe:a9fe]", "reserved"),
    ("[64:ff9b:1:a9fe:a9:fe00::]", "reserved"),  # /48 layout: 169.254 | u-octet | 169.254
    ("[64:ff9b:1::5db8:d822]", "reserved"),  # local-use: refused whatever it embeds
    # 6to4 and Teredo (client address stored XOR-ed)
    ("[2002:a9fe:a9fe::1]", "reserved"),
    ("[2002:7f00:1::]", "loopback"),
    ("[2002:c0a8:101::1]", "private"),
    ("[2002:5db8:d822::1]", "public"),
    ("[2001:0:4136:e378:8000:63bf:5601:5601]", "reserved"),  # client ~5601:5601 = 169.254.169.254... XOR-ed
    ("[2001:0:4136:e378:8000:63bf:80ff:fffe]", "loopback"),  # client 127.0.0.1
    ("[2001:0:4136:e378:8000:63bf:a247:2dcb]", "public"),  # client 93.184.210.52
    # IPv4 spelled as the C resolver reads it
    ("2852039166", "reserved"),  # 169.254.169.254
    ("0xa9fea9fe", "reserved"),
    ("0251.0376.0251.0376", "reserved"),
    ("0xa9.0xfe.0xa9.0xfe", "reserved"),
    ("169.254.43518", "reserved"),
    ("127.1", "loopback"),
    ("0x7f000001", "loopback"),
    ("017700000001", "loopback"),
    ("2130706433", "loopback"),
    ("10.1", "private"),
    ("127.0.0.1.", "loopback"),
    ("1572395042", "public"),  # 93.184.216.34
    # public
    ("93.184.216.34", "public"),
    ("[2606:4700::1]", "public"),
]


@pytest.mark.parametrize(("host", "kind"), ADDRESS_FORMS)
def test_every_address_form_is_judged_by_what_it_reaches(host: str, kind: str) -> None:
    address = literal_address(host.strip("[]").replace("%25", "%"))
    assert address is not None
    assert classify(address) == kind
    url = f"http://{host}:8080/hook"
    strict, open_ = check_url(url, STRICT), check_url(url, OPEN)
    if kind == "public":
        assert strict is None and open_ is None
    elif kind == "reserved":
        assert "never webhook targets" in (strict or "") and "never webhook targets" in (open_ or "")
    else:
        assert f"a {kind} address" in (strict or "") and "CRONGRAPH_WEBHOOK_ALLOW_PRIVATE" in (strict or "")
        assert open_ is None


def test_teredo_client_is_unxored() -> None:
    # Teredo stores the client's address XOR-ed with all ones: 3f57:fefe is 192.168.1.1.
    address = ipaddress.IPv6Address("2001:0:4136:e378:8000:63bf:3f57:fefe")
    assert address.teredo is not None and str(address.teredo[1]) == "192.168.1.1"
    assert classify(address) == "private"


@pytest.mark.parametrize("host", ["hooks.example.com", "1.2.3.example", "0x.example", "a1b2", "deadbeef", "1e10"])
def test_names_are_not_addresses(host: str) -> None:
    assert literal_address(host) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:3000/x",
        "http://LOCALHOST./x",
        "http://a.b.localhost/x",
        "http://localhost.localdomain/x",
        "http://host.docker.internal/x",
    ],
)
def test_loopback_names(url: str) -> None:
    assert "loopback" in (check_url(url, STRICT) or "")
    assert check_url(url, OPEN) is None


@pytest.mark.parametrize("host", ["metadata.google.internal", "metadata", "instance-data"])
def test_metadata_names_are_never_targets(host: str) -> None:
    assert "never webhook targets" in (check_url(f"http://{host}/computeMetadata/v1/", OPEN) or "")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "example.com/hook", "http://", "https://h:99999/", "http://h:0/", "/relative/hook"]
)
def test_malformed_urls(url: str) -> None:
    assert "Invalid webhook URL" in (check_url(url, OPEN) or "")


def test_url_policy_of_langgraph_json() -> None:
    block = SimpleNamespace(
        require_https=True,
        allowed_domains=["hooks.example.com", "*.corp.example"],
        allowed_ports=[443, 8443],
        max_url_length=60,
        disable_loopback=True,
        disable_private_ips=False,
    )
    policy = WebhookUrlPolicy.build(block)
    assert check_url("https://hooks.example.com/x", policy) is None
    assert check_url("https://a.corp.example:8443/x", policy) is None
    assert check_url("https://a.b.corp.example/x", policy) is None
    assert "requires https" in (check_url("http://hooks.example.com/x", policy) or "")
    assert "domain corp.example is not allowed" in (check_url("https://corp.example/x", policy) or "")
    assert "domain evil.example is not allowed" in (check_url("https://evil.example/x", policy) or "")
    assert "domain hooks.example.com.evil is not allowed" in (
        check_url("https://hooks.example.com.evil/", policy) or ""
    )
    assert "port 8080 is not allowed" in (check_url("https://hooks.example.com:8080/x", policy) or "")
    assert "too long: 61 characters, at most 60" in (check_url("https://hooks.example.com/" + "x" * 35, policy) or "")
    # The block's own address switches: private allowed (the reference's default), loopback not.
    assert (
        check_url(
            "https://10.0.0.1/x", WebhookUrlPolicy.build(SimpleNamespace(**{**vars(block), "allowed_domains": []}))
        )
        is None
    )
    assert "loopback" in (
        check_url(
            "https://127.0.0.1/x", WebhookUrlPolicy.build(SimpleNamespace(**{**vars(block), "allowed_domains": []}))
        )
        or ""
    )
    # CRONGRAPH_WEBHOOK_ALLOW_PRIVATE lifts both; reserved addresses stay refused.
    lifted = WebhookUrlPolicy.build(SimpleNamespace(**{**vars(block), "allowed_domains": []}), allow_private=True)
    assert check_url("https://127.0.0.1/x", lifted) is None
    assert "never" in (check_url("https://169.254.169.254/x", lifted) or "")
    # No block: crongraph's defaults.
    assert WebhookUrlPolicy.build(None) == STRICT
    assert WebhookUrlPolicy.build(None, allow_private=True) == OPEN


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example.com/x?a=1", "https://hooks.example.com/x?a=1"),
        ("https://user:hunter2@hooks.example.com/x", "https://***@hooks.example.com/x"),
        ("https://tok3n@hooks.example.com:8443/x", "https://***@hooks.example.com:8443/x"),
        ("https://h.example/x?token=abc&run=1", "https://h.example/x?token=***&run=1"),
        (
            "https://h.example/x?api_key=abc&Signature=s&X-Amz-Credential=c",
            "https://h.example/x?api_key=***&Signature=***&X-Amz-Credential=***",
        ),
        ("https://u:p@h.example/x?password=p#frag", "https://***@h.example/x?password=***#frag"),
    ],
)
def test_redaction(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "hunter2" not in (check_url(url.replace("https://", "ftp://"), OPEN) or "")


def test_refusals_never_echo_secrets() -> None:
    reason = check_url("http://admin:hunter2@127.0.0.1/x?token=s3cret", STRICT) or ""
    assert "loopback" in reason and "hunter2" not in reason and "s3cret" not in reason
    reason = check_url("ftp://admin:hunter2@example.com/?token=s3cret", STRICT) or ""
    assert "Invalid webhook URL" in reason and "hunter2" not in reason and "s3cret" not in reason
