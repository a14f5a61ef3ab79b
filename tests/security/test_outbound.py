"""The portal's own outbound traffic goes only to AWS endpoints and the runtime URL, with the IP
checked at connect time (S9): real sockets on loopback, and DNS answers made up for made-up names
only (there is no DNS here)."""

import logging
import socket
from collections import Counter
from collections.abc import Iterator

import boto3
import pytest
import urllib3.util.connection
from botocore.config import Config
from django.core.checks import run_checks
from urllib3.connection import HTTPConnection
from urllib3.exceptions import NewConnectionError

from environments import outbound
from environments.backends.aws import AwsBackend
from environments.backends.base import ProviderBusy, ProviderError
from environments.models import Environment

pytestmark = pytest.mark.security

SAGEMAKER = "api.sagemaker.eu-west-1.amazonaws.com"
PUBLIC = "52.94.236.248"  # an address in AWS's published eu-west-1 ranges


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A port on 127.0.0.1 that listens but accepts only when the test asks: a client's
    connect completes in the kernel's backlog, so `accepted` sees every connection made."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sock.settimeout(0.5)
        yield sock


def port_of(sock: socket.socket) -> int:
    return sock.getsockname()[1]


def accepted(sock: socket.socket) -> bool:
    try:
        connection, _ = sock.accept()
    except TimeoutError:
        return False
    connection.close()
    return True


def connect(host: str, port: int) -> HTTPConnection:
    """A connection opened by urllib3 the way botocore opens one."""
    connection = HTTPConnection(host, port, timeout=1)
    connection.connect()
    return connection


class FakeDns:
    """socket.getaddrinfo answering made-up names from `answers` (one list of addresses per
    lookup, the last repeated) and counting their lookups; every other name goes to the real
    resolver."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: Counter = Counter()
        self.real = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self.getaddrinfo)

    def getaddrinfo(self, host: str, port: int, *args: object, **kwargs: object) -> list:
        if host not in self.answers:
            return self.real(host, port, *args, **kwargs)
        answers = self.answers[host]
        addresses = answers[min(self.lookups[host], len(answers) - 1)]
        self.lookups[host] += 1
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
            if ":" in address
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
            for address in addresses
        ]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    return FakeDns(monkeypatch)


def security_log(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(
        record.getMessage() for record in caplog.records if record.name == "portal.security"
    )


def test_a_loopback_port_that_is_not_the_runtime_is_refused_before_any_connection(
    listener, settings, caplog
) -> None:
    port = port_of(listener)
    settings.LOCAL_RUNTIME_URL = f"http://127.0.0.1:{port + 1}"  # the runtime is elsewhere
    caplog.set_level(logging.WARNING, logger="portal.security")

    with pytest.raises(NewConnectionError) as raised:
        connect("127.0.0.1", port)

    refused = f"outbound connection to 127.0.0.1 (127.0.0.1:{port}) refused: not an AWS endpoint"
    assert refused in str(raised.value)
    assert isinstance(raised.value.__cause__, outbound.OutboundRefused)
    assert not accepted(listener)
    assert refused in security_log(caplog)


def test_the_runtime_url_is_allowed(listener, settings) -> None:
    settings.LOCAL_RUNTIME_URL = f"http://127.0.0.1:{port_of(listener)}"

    connect("127.0.0.1", port_of(listener)).close()

    assert accepted(listener)


def test_a_place_in_portal_outbound_allow_is_allowed(listener, settings) -> None:
    settings.PORTAL_OUTBOUND_ALLOW = ["proxy.internal:3128", f"127.0.0.1:{port_of(listener)}"]

    connect("127.0.0.1", port_of(listener)).close()

    assert accepted(listener)


def test_switching_the_guard_off_lets_every_connection_through(listener, settings) -> None:
    settings.PORTAL_OUTBOUND_GUARD = False

    connect("127.0.0.1", port_of(listener)).close()

    assert accepted(listener)


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",  # the instance metadata service
        "fd00:ec2::254",  # the same, over IPv6
        "10.0.0.5",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",  # carrier-grade NAT
        "127.0.0.1",
        "::1",
        "0.0.0.0",  # noqa: S104 (an answer, not a bind)
        "224.0.0.1",
        "240.0.0.1",
        "::ffff:10.0.0.5",  # IPv4-mapped
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:a00:5::1",  # 6to4 of 10.0.0.5
        "fe80::1",
        "fc00::1",
    ],
)
def test_an_aws_name_resolving_to_a_non_public_address_is_refused(dns, address) -> None:
    dns.answers[SAGEMAKER] = [[address]]

    with pytest.raises(NewConnectionError) as raised:
        connect(SAGEMAKER, 443)

    assert f"outbound connection to {address} ({SAGEMAKER}:443) refused" in str(raised.value)
    assert dns.lookups[SAGEMAKER] == 1


def test_an_aws_name_is_refused_when_any_of_its_addresses_is_not_public(dns) -> None:
    dns.answers[SAGEMAKER] = [[PUBLIC, "10.0.0.5"]]

    with pytest.raises(NewConnectionError) as raised:
        connect(SAGEMAKER, 443)

    assert f"outbound connection to 10.0.0.5 ({SAGEMAKER}:443) refused" in str(raised.value)


@pytest.mark.parametrize(
    "host",
    [
        SAGEMAKER,
        "runtime.sagemaker.eu-west-1.amazonaws.com",
        "sts.amazonaws.com",
        "S3.EU-WEST-1.AMAZONAWS.COM.",
        "api.sagemaker.cn-north-1.amazonaws.com.cn",
        "api.sagemaker.us-east-1.api.aws",
    ],
)
@pytest.mark.parametrize("address", [PUBLIC, "2600:1f18:4a3:6902::1", "::ffff:52.94.236.248"])
def test_public_addresses_of_aws_names_pass_the_check(host, address) -> None:
    assert outbound.refusal(host, 443, address) is None


@pytest.mark.parametrize(
    ("host", "port"),
    [
        ("amazonaws.com.evil.example", 443),
        ("evilamazonaws.com", 443),
        ("amazonaws.com", 443),
        ("sagemaker.eu-west-1.amazonaws.com.evil.example", 443),
        (SAGEMAKER, 80),  # AWS endpoints are https
        (SAGEMAKER, 8443),
        (PUBLIC, 443),
    ],
)
def test_names_and_ports_that_only_look_like_aws_are_refused(host, port) -> None:
    assert outbound.refusal(host, port, PUBLIC) == outbound.NOT_ALLOWED


def test_the_connection_goes_to_the_address_that_was_checked(listener, settings, dns) -> None:
    port = port_of(listener)
    settings.PORTAL_OUTBOUND_ALLOW = [f"proxy.portal.test:{port}"]
    # A rebinding name: the first answer is checked; any later lookup would get another.
    dns.answers["proxy.portal.test"] = [["127.0.0.1"], ["10.9.9.9"]]

    connection = connect("proxy.portal.test", port)

    assert connection.sock.getpeername() == ("127.0.0.1", port)
    assert dns.lookups["proxy.portal.test"] == 1
    assert accepted(listener)
    connection.close()


def test_the_credential_chain_reaches_the_metadata_service_only_by_its_address(dns) -> None:
    assert outbound.refusal("169.254.169.254", 80, "169.254.169.254") is None
    assert outbound.refusal("fd00:ec2::254", 80, "fd00:ec2::254") is None
    assert outbound.refusal("169.254.170.2", 80, "169.254.170.2") is None  # ECS task role
    assert outbound.refusal("169.254.169.254", 8080, "169.254.169.254") == outbound.NOT_ALLOWED
    dns.answers["metadata.evil.example"] = [["169.254.169.254"]]

    with pytest.raises(NewConnectionError, match="refused: not an AWS endpoint"):
        connect("metadata.evil.example", 80)


def test_an_endpoint_url_pointing_the_aws_backend_elsewhere_gives_the_user_a_sentence(
    listener, aws_test_keys, monkeypatch, caplog
) -> None:
    port = port_of(listener)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", f"http://127.0.0.1:{port}")
    backend = AwsBackend(Environment(name="prod", kind="aws", region="eu-west-1"))
    caplog.set_level(logging.WARNING, logger="portal.security")

    with pytest.raises(ProviderError) as raised:
        backend.invoke("iris", b"{}", content_type="application/json")

    assert not isinstance(raised.value, ProviderBusy)  # retrying would not help: no retry
    assert raised.value.code == "OutboundRefused"
    assert f"does not connect there: outbound connection to 127.0.0.1 (127.0.0.1:{port})" in (
        raised.value.message
    )
    assert "PORTAL_OUTBOUND_ALLOW" in raised.value.message
    assert not accepted(listener)
    assert f"(127.0.0.1:{port}) refused: not an AWS endpoint" in security_log(caplog)


def test_an_aws_name_resolving_to_the_metadata_service_fails_the_aws_backend_plainly(
    dns, aws_test_keys, caplog
) -> None:
    runtime = "runtime.sagemaker.eu-west-1.amazonaws.com"
    dns.answers[runtime] = [["169.254.169.254"]]
    backend = AwsBackend(Environment(name="prod", kind="aws", region="eu-west-1"))
    caplog.set_level(logging.WARNING, logger="portal.security")

    with pytest.raises(ProviderError) as raised:
        backend.invoke("iris", b"{}", content_type="application/json")

    assert raised.value.code == "OutboundRefused"
    assert f"169.254.169.254 ({runtime}:443) refused" in raised.value.message
    assert dns.lookups[runtime] == 1  # invocations are sent once (aws.RUNTIME_CONFIG)
    assert f"169.254.169.254 ({runtime}:443) refused" in security_log(caplog)


def test_installing_the_guard_again_keeps_one_guard(listener, settings) -> None:
    outbound.install()
    outbound.install()
    settings.LOCAL_RUNTIME_URL = f"http://127.0.0.1:{port_of(listener)}"

    connect("127.0.0.1", port_of(listener)).close()  # a guard wrapping itself would recurse

    assert urllib3.util.connection.create_connection is outbound.guarded_create_connection
    assert accepted(listener)
    with pytest.raises(NewConnectionError, match="refused"):
        connect("127.0.0.1", port_of(listener) + 1)


@pytest.mark.parametrize(
    ("region", "dual_stack"),
    [("eu-west-1", False), ("us-east-1", True), ("us-gov-west-1", False), ("cn-north-1", True)],
)
def test_every_endpoint_botocore_picks_for_the_portal_is_an_aws_name(region, dual_stack) -> None:
    services = ["sagemaker", "sagemaker-runtime", "application-autoscaling", "cloudwatch"]
    services += ["s3", "logs", "sts"]
    config = Config(use_dualstack_endpoint=dual_stack)
    for service in services:
        client = boto3.client(service, region_name=region, config=config)
        host = urllib3.util.parse_url(client.meta.endpoint_url).host
        assert outbound.refusal(host, 443, PUBLIC) is None, host


def test_the_deploy_check_warns_when_the_guard_is_off(settings) -> None:
    assert "portal.W001" not in {message.id for message in deploy_checks()}
    settings.PORTAL_OUTBOUND_GUARD = False

    assert "portal.W001" in {message.id for message in deploy_checks()}


def test_an_allow_entry_that_is_not_host_and_port_fails_the_checks(settings) -> None:
    settings.PORTAL_OUTBOUND_ALLOW = ["proxy.internal:3128", "[::1]:8080"]
    assert "portal.E004" not in {message.id for message in deploy_checks()}
    settings.PORTAL_OUTBOUND_ALLOW = ["proxy.internal"]

    assert "portal.E004" in {message.id for message in deploy_checks()}


def deploy_checks() -> list:
    return run_checks(tags=["security"], include_deployment_checks=True)
