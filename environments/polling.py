"""One status cycle over every endpoint of an environment, in as few provider calls as it takes.

ListEndpoints pages (100 a call) give every endpoint's status; DescribeEndpoint, which is what
carries FailureReason and instance counts, is called only for endpoints in transition or whose
status changed since the last cycle. For 1,000 settled endpoints that is 10 calls, not 1,000
(`make bench` measures it).
"""

from collections.abc import Mapping
from dataclasses import dataclass

from environments.backends.base import Backend, EndpointState, EndpointSummary

TRANSITIONAL = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})


@dataclass(frozen=True)
class Cycle:
    """What one cycle learnt: every endpoint listed, the described ones in full, and the names
    the portal knew that the provider no longer has (deleted)."""

    listed: dict[str, EndpointSummary]
    described: dict[str, EndpointState]
    gone: frozenset[str]


def status_cycle(backend: Backend, known: Mapping[str, str]) -> Cycle:
    """Poll every endpoint once. `known` maps the endpoint names the portal tracks to the status
    it last stored for each."""
    listed = {summary.name: summary for summary in backend.list_endpoints()}
    described = {}
    for name, summary in listed.items():
        if name in known and (summary.status in TRANSITIONAL or summary.status != known[name]):
            state = backend.describe_endpoint(name)
            if state is not None:
                described[name] = state
    gone = frozenset(name for name in known if name not in listed)
    return Cycle(listed=listed, described=described, gone=gone)


def naive_cycle(backend: Backend, known: Mapping[str, str]) -> dict[str, EndpointState | None]:
    """The way not to do it, kept for the benchmark: one DescribeEndpoint per endpoint."""
    return {name: backend.describe_endpoint(name) for name in known}
