"""Cost: what an endpoint's observed traffic would cost a month as it is configured, and as
each other kind would cost it (provisioned always on, serverless, async scaled to zero), from
the price table in insights/conf.py, with every assumption written out."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Sum
from django.db.models.functions import TruncHour

from endpoints.models import Endpoint
from insights import conf
from insights.charts import Window, sampling_percentage
from insights.models import MinuteRollup

DEFAULT_DURATION_S = 0.1
DEFAULT_SERVERLESS_MB = 2048
DEFAULT_INSTANCE = "ml.m5.large"


@dataclass
class Option:
    kind: str
    label: str
    monthly: float | None
    how: str
    current: bool = False
    caveat: str = ""

    @property
    def monthly_text(self) -> str:
        return money(self.monthly)


@dataclass
class Estimate:
    requests_per_month: float
    observed: int
    options: list[Option]
    assumptions: list[str]
    recommendation: str
    local: bool
    notes: list[str] = field(default_factory=list)

    @property
    def cheapest(self) -> Option | None:
        priced = [option for option in self.options if option.monthly is not None]
        return min(priced, key=lambda option: option.monthly) if priced else None


def money(value: float | None) -> str:
    if value is None:
        return "—"
    return f"${value:,.2f}" if value < 100 else f"${value:,.0f}"


def estimate(endpoint: Endpoint, span: Window, duration_s: float | None = None) -> Estimate:
    """The monthly cost of the window's traffic, extrapolated to 30.4 days, for each kind."""
    prices = conf.prices()
    hours_per_month = prices["hours_per_month"]
    rollups = MinuteRollup.objects.filter(
        endpoint=endpoint, minute__gte=span.start, minute__lt=span.end
    )
    totals = rollups.aggregate(
        count=Sum("count"), sent=Sum("request_bytes"), received=Sum("response_bytes")
    )
    observed = totals["count"] or 0
    sampling = sampling_percentage(endpoint) or 100
    scale = hours_per_month / max(span.hours, 1 / 60)
    requests = observed * 100 / sampling * scale
    bytes_per_request = (
        ((totals["sent"] or 0) + (totals["received"] or 0)) / observed if observed else 0
    )
    busy_hours = (
        rollups.annotate(hour=TruncHour("minute")).values("hour").annotate(n=Count("id")).count()
    )
    active_hours = min(hours_per_month, busy_hours * scale)
    assumptions = [
        f"Traffic: {observed:,} captured records in {span.label.lower()}"
        + (f", at {sampling}% sampling" if sampling != 100 else "")
        + f", so about {requests:,.0f} requests a month (30.4 days).",
    ]
    if duration_s is None:
        duration_s = DEFAULT_DURATION_S
        assumptions.append(
            f"Each request takes {duration_s * 1000:.0f} ms (no latency metric in this range)."
        )
    else:
        assumptions.append(
            f"Each request takes {duration_s * 1000:.0f} ms (average model latency)."
        )

    variants = endpoint.spec.get("variants", [])
    instance_prices = conf.instance_prices()
    provisioned_variants = [v for v in variants if v.get("instance_type")]
    instance_type = (
        provisioned_variants[0]["instance_type"] if provisioned_variants else DEFAULT_INSTANCE
    )
    if not provisioned_variants:
        assumptions.append(f"Instance-backed options use one {DEFAULT_INSTANCE}.")
    storage = prices["storage_gb"] * prices["storage_per_gb_month"]
    assumptions.append(
        f"Instances also pay {prices['storage_gb']} GB of storage "
        f"(${prices['storage_per_gb_month']}/GB-month); data transfer is not counted."
    )

    options = []
    # Provisioned, always on.
    hourly = 0.0
    unknown = []
    counted = provisioned_variants or [{"instance_type": instance_type, "instance_count": 1}]
    for variant in counted:
        price = instance_prices.get(variant["instance_type"])
        if price is None:
            unknown.append(variant["instance_type"])
            continue
        hourly += price * int(variant.get("instance_count") or 1)
    instance_count = sum(int(v.get("instance_count") or 1) for v in counted)
    provisioned = None if unknown else hourly * hours_per_month + storage * instance_count
    scaling = endpoint.spec.get("autoscaling") or {}
    types = ", ".join(sorted({variant["instance_type"] for variant in counted}))
    how = f"{instance_count} × {types} around the clock"
    if scaling.get("enabled") and endpoint.kind == Endpoint.Kind.REAL_TIME and provisioned:
        per_instance = provisioned / instance_count
        how += (
            f"; autoscaling between {scaling['min']} and {scaling['max']} instances costs "
            f"{money(per_instance * scaling['min'])} to {money(per_instance * scaling['max'])}"
        )
    options.append(
        Option(
            "real-time",
            "Provisioned real-time",
            provisioned,
            how,
            current=endpoint.kind == Endpoint.Kind.REAL_TIME,
            caveat=f"no list price for {', '.join(unknown)}" if unknown else "",
        )
    )
    # Serverless, on demand.
    memory = DEFAULT_SERVERLESS_MB
    serverless_variants = [v for v in variants if v.get("serverless")]
    if serverless_variants:
        memory = int(serverless_variants[0]["serverless"].get("memory") or memory)
    else:
        assumptions.append(f"Serverless uses {memory} MB of memory.")
    compute = requests * duration_s * (memory / 1024) * prices["serverless_per_gb_second"]
    data = requests * bytes_per_request / 1024**3 * prices["serverless_per_gb_data"]
    caveats = []
    if (endpoint.spec.get("capture") or {}).get("enabled"):
        caveats.append("serverless endpoints have no data capture")
    if len(variants) > 1:
        caveats.append("serverless allows one variant only")
    options.append(
        Option(
            "serverless",
            "Serverless",
            compute + data,
            f"{money(compute)} compute ({memory} MB) + {money(data)} data processed; "
            "idle time is free",
            current=endpoint.kind == Endpoint.Kind.SERVERLESS,
            caveat="; ".join(caveats),
        )
    )
    # Async, scaled to zero between bursts.
    unit_price = instance_prices.get(instance_type)
    async_cost = None
    if unit_price is not None:
        async_cost = active_hours * unit_price + (storage if active_hours else 0)
    options.append(
        Option(
            "async",
            "Async, scaling to zero",
            async_cost,
            f"1 × {instance_type} for about {active_hours:,.0f} hours a month with traffic",
            current=endpoint.kind == Endpoint.Kind.ASYNC,
            caveat="callers get results later, from S3, not in the response",
        )
    )
    assumptions.append(
        "Async runs one instance through every hour that had traffic and none otherwise."
    )
    assumptions.append(
        f"Prices: {prices['region']} on-demand list prices from the portal's price table, "
        "not a bill; the free tier and savings plans are not counted."
    )
    result = Estimate(
        requests_per_month=requests,
        observed=observed,
        options=options,
        assumptions=assumptions,
        recommendation="",
        local=endpoint.environment.is_local,
    )
    result.recommendation = recommend(endpoint, result)
    return result


def recommend(endpoint: Endpoint, result: Estimate) -> str:
    """One plain sentence: keep the kind, or which kind would cost less and what it gives up."""
    if not result.observed:
        return (
            "No captured traffic in this range yet, so there is nothing to compare: an idle "
            "provisioned endpoint still costs its full instance price, serverless costs nothing."
        )
    current = next((option for option in result.options if option.current), None)
    cheapest = result.cheapest
    if current is None or cheapest is None or current.monthly is None:
        return "Prices are missing for this configuration; compare the kinds by hand."
    if cheapest is current or cheapest.monthly >= current.monthly * 0.8:
        return (
            f"Keep it {current.label.lower()}: at this traffic it is the cheapest, or within "
            f"20% of it ({money(current.monthly)} a month)."
        )
    saving = current.monthly - cheapest.monthly
    text = (
        f"Consider {cheapest.label.lower()}: about {money(cheapest.monthly)} a month instead of "
        f"{money(current.monthly)}, saving {money(saving)}."
    )
    if cheapest.caveat:
        text += f" Mind that {cheapest.caveat}."
    return text
