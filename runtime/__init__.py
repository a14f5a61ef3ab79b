"""The local runtime: an embedded, SageMaker-compatible inference host on this machine."""

import asyncio


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed, for the router and its containers alike: the router's own
    CPU per request bounds its throughput next to the model processes (make bench)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
