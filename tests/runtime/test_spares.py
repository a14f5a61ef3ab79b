"""Warm spares: a serverless cold start takes a waiting standby process of its image, and the
replacement standby starts only a few seconds later, so importing its libraries does not take
the CPU the adopted model needs for its first answer."""

import time
from pathlib import Path

from runtime.host import SPARE_REPLACEMENT_DELAY_S
from tests.runtime import artifacts
from tests.runtime.test_endpoints import deploy

SERVERLESS = {"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 1}}


def sklearn_spares(state: Path) -> list[Path]:
    """Standby folders of the sklearn image whose process said it is serving (ready)."""
    return sorted(
        folder
        for folder in (state / "spares").glob("sklearn-*")
        if "Serving sklearn" in (folder / "container.log").read_text(errors="replace")
    )


def wait_until(condition, seconds: float) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "timed out"
        time.sleep(0.05)
    return time.monotonic() - started


def serverless_variant(name: str) -> list[dict]:
    return [{"VariantName": "AllTraffic", "ModelName": name, **SERVERLESS}]


def test_the_replacement_spare_starts_after_the_adopted_one_has_answered(aws, runtime_dirs):
    sagemaker, runtime = aws
    state = runtime_dirs["state"]
    artifacts.write(
        runtime_dirs["s3"], "s3://models/iris/model.tar.gz", artifacts.iris_like_classifier()
    )
    container = {"Image": "sklearn", "ModelDataUrl": "s3://models/iris/model.tar.gz"}
    wait_until(lambda: len(sklearn_spares(state)) == 1, 60)
    for name in ("first", "second"):
        described = deploy(
            sagemaker, name, {"PrimaryContainer": container}, serverless_variant(name)
        )
        assert described["EndpointStatus"] == "InService"

    first = runtime.invoke_endpoint(EndpointName="first", ContentType="text/csv", Body=b"0.5,1")
    adopted_at = time.monotonic()
    folders_then = len(list((state / "spares").glob("sklearn-*")))
    # A second cold start while the replacement waits launches its own process: it works,
    # it only is not sped up by a spare.
    second = runtime.invoke_endpoint(EndpointName="second", ContentType="text/csv", Body=b"9.5,1")
    waited = wait_until(lambda: len(sklearn_spares(state)) == 2, SPARE_REPLACEMENT_DELAY_S + 60)

    assert first["Body"].read() and second["Body"].read()
    assert folders_then == 1  # no replacement process was started with the first answer
    assert time.monotonic() - adopted_at >= SPARE_REPLACEMENT_DELAY_S
    assert waited > 0
