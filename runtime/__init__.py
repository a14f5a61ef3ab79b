"""The local runtime: an embedded, SageMaker-compatible inference host on this machine."""

import asyncio

# Not a SageMaker header (SageMaker reports ModelLatency only to CloudWatch): the runtime tells
# the portal the model's own time for each call, so the playground splits model and overhead.
MODEL_LATENCY_HEADER = "X-Portal-Model-Latency-Us"


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed, for the router and its containers alike: the router's own
    CPU per request bounds its throughput next to the model processes (make bench)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
