"""SageMaker's rules for models and endpoints, once, for forms, the playground and the runtime.

Every function raises `django.core.exceptions.ValidationError` (with a `code`) and returns None.
Those that take one value work as Django field validators; the rest take structured values in
the API's own words (`ContainerHostname`, `VariantName`, `ServerlessConfig`). Every message says
how to fix the value and gives an example of a good one.

Sources: shared/reference/sagemaker.md §1-4 (API limits) and reliability.md §3.5 (input rules).
"""

import functools
import math
import re
from collections.abc import Callable
from urllib.parse import unquote

from django.core.exceptions import ValidationError

from environments.validators import validate_bucket, validate_region
from environments.validators import validate_role_arn as validate_role_arn_pattern

# Endpoint kinds, as Endpoint.Kind stores them.
REAL_TIME = "real-time"
SERVERLESS = "serverless"
ASYNC = "async"

# -- names (sagemaker.md §1.1: botocore checks neither length nor pattern, so we must) -----------

RESOURCE_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
MODEL_NAME = re.compile(r"[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?")
NAME_MESSAGE = (
    "Use 1 to 63 letters, digits or hyphens, starting and ending with a letter or digit, "
    "such as churn-model-v2."
)


def validate_resource_name(value: str) -> None:
    """An EndpointName, EndpointConfigName, VariantName or ContainerHostname."""
    if len(value) > 63 or not RESOURCE_NAME.fullmatch(value):
        raise ValidationError(NAME_MESSAGE, code="invalid_name")


def validate_model_name(value: str) -> None:
    if len(value) > 63 or not MODEL_NAME.fullmatch(value):
        raise ValidationError(NAME_MESSAGE, code="invalid_name")


# -- container images and artifacts (sagemaker.md §1.2) ------------------------------------------

ECR_IMAGE = re.compile(
    r"\d{12}\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/"
    r"[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})?"
)
LOCAL_IMAGE = re.compile(r"(sklearn|python|llm)(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?")
ECR_EXAMPLE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/churn:1.0"


def validate_image(value: str, allow_local: bool = False) -> None:
    """An ECR image URI, or (where `allow_local`) a local runtime serving image such as sklearn."""
    if allow_local:
        message = (
            f"Use an ECR image URI such as {ECR_EXAMPLE}, or a local serving image: "
            "sklearn, python or llm (optionally with a tag, such as sklearn:1.5)."
        )
    else:
        message = f"Use an ECR image URI such as {ECR_EXAMPLE}."
    if len(value) > 255 or re.search(r"\s", value):
        raise ValidationError(message, code="invalid_image")
    if allow_local and LOCAL_IMAGE.fullmatch(value):
        return
    match = ECR_IMAGE.fullmatch(value)
    if match is None:
        raise ValidationError(message, code="invalid_image")
    try:
        validate_region(match["region"])
    except ValidationError:
        raise ValidationError(message, code="invalid_image") from None


def image_validator(allow_local: bool) -> Callable[[str], None]:
    """validate_image as a one-value field validator (a partial, so migrations can store it)."""
    return functools.partial(validate_image, allow_local=allow_local)


S3_URI = re.compile(r"s3://(?P<bucket>[^/]*)(/(?P<key>.*))?", re.DOTALL)
BUCKET_MESSAGE = (
    "Use a bucket name of 3 to 63 lowercase letters, digits, dots or hyphens, "
    "such as s3://my-models/churn/model.tar.gz."
)


def _split_s3_uri(value: str, max_length: int, example: str) -> tuple[str, str]:
    """The bucket and key of an s3:// URI, after the rules every portal S3 location follows."""
    if len(value) > max_length:
        raise ValidationError(
            f"Use an S3 URI of at most {max_length} characters, such as {example}.",
            code="too_long",
        )
    # https:// is in the API's pattern, but an arbitrary URL would let SageMaker (or the local
    # runtime) fetch from anywhere: SSRF (reliability.md §3.5). Only s3:// is accepted.
    match = S3_URI.fullmatch(value)
    if match is None:
        raise ValidationError(f"Use an s3:// URI such as {example}.", code="not_s3")
    if re.search(r"\s", value) or not value.isprintable():
        raise ValidationError(
            f"Remove the spaces and control characters, as in {example}.", code="whitespace"
        )
    bucket, key = match["bucket"], match["key"] or ""
    try:
        validate_bucket(bucket)
    except ValidationError:
        raise ValidationError(BUCKET_MESSAGE, code="invalid_bucket") from None
    # The local runtime maps keys onto files, so `..` would climb out of storage.
    if ".." in key.split("/"):
        raise ValidationError(
            f"Remove the .. folder from the path, as in {example}.", code="dot_dot"
        )
    return bucket, key


def validate_model_data_url(value: str) -> None:
    """A single model's artifact: one model.tar.gz in S3."""
    example = "s3://my-models/churn/model.tar.gz"
    _, key = _split_s3_uri(value, 1024, example)
    if not key.endswith(".tar.gz") or key.rsplit("/", 1)[-1] == ".tar.gz":
        raise ValidationError(f"Point at a .tar.gz archive, such as {example}.", code="not_tar_gz")


def validate_model_prefix(value: str) -> None:
    """A multi-model container's ModelDataUrl: the S3 folder TargetModel paths resolve against."""
    example = "s3://my-models/team-a/"
    _split_s3_uri(value, 1024, example)
    if not value.endswith("/"):
        raise ValidationError(f"End the folder with a slash, such as {example}.", code="not_prefix")


def s3_uri_in(value: str, bucket: str, prefix: str) -> None:
    """Refuse an s3:// URI outside the environment's bucket and prefix (its storage allowlist)."""
    allowed = f"s3://{bucket}/{prefix}"
    message = f"Use a location under {allowed}, the environment's storage."
    match = S3_URI.fullmatch(value)
    if match is None:
        raise ValidationError(message, code="outside_storage")
    key = match["key"] or ""
    folder = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    if match["bucket"] != bucket or not key.startswith(folder) or ".." in key.split("/"):
        raise ValidationError(message, code="outside_storage")


def validate_role_arn(value: str) -> None:
    """An ExecutionRoleArn: 20 to 2048 characters in the IAM role ARN pattern."""
    if not 20 <= len(value) <= 2048:
        raise ValidationError(
            "Use an IAM role ARN of 20 to 2048 characters, such as "
            "arn:aws:iam::123456789012:role/PortalSageMakerExecution.",
            code="invalid_role_arn",
        )
    validate_role_arn_pattern(value)


# -- container environment variables (sagemaker.md §1.2) -----------------------------------------

ENVIRONMENT_KEY = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
KEY_MESSAGE = (
    "use letters, digits and underscores, not starting with a digit, such as SAGEMAKER_PROGRAM"
)
MAX_ENVIRONMENT_BYTES = 32 * 1024


def validate_environment_variables(mapping: dict[str, str]) -> None:
    """One container's Environment map: at most 100 entries of at most 1024 bytes each."""
    if len(mapping) > 100:
        raise ValidationError(
            f"Use at most 100 environment variables; this has {len(mapping)}.",
            code="too_many",
        )
    for key, value in mapping.items():
        if not isinstance(key, str) or not ENVIRONMENT_KEY.fullmatch(key):
            raise ValidationError(f"{key!r}: {KEY_MESSAGE}.", code="invalid_key")
        if len(key.encode()) > 1024:
            raise ValidationError(
                f"Shorten the name {key[:20]}… to at most 1024 bytes.", code="too_long"
            )
        if not isinstance(value, str):
            raise ValidationError(
                f"Give {key} a text value, such as {key}=1.", code="invalid_value"
            )
        if len(value.encode()) > 1024:
            raise ValidationError(
                f"Shorten the value of {key} to at most 1024 bytes; put larger settings in the "
                "model artifact.",
                code="too_long",
            )


def validate_total_environment_size(maps: list[dict[str, str]]) -> None:
    """All containers' Environment maps together hold at most 32 KB (the whole CreateModel)."""
    total = sum(
        len(key.encode()) + len(str(value).encode())
        for environment in maps
        for key, value in environment.items()
    )
    if total > MAX_ENVIRONMENT_BYTES:
        raise ValidationError(
            f"The environment variables of all containers add up to {total:,} bytes; keep them "
            f"under 32 KB ({MAX_ENVIRONMENT_BYTES:,} bytes) by moving large settings into the "
            "model artifact.",
            code="too_large",
        )


def parse_environment_text(text: str) -> dict[str, str]:
    """`KEY=value` lines to a dict; blank lines and `# comments` are skipped. Values are taken
    literally (no quotes are removed). Errors name the line to fix."""
    environment: dict[str, str] = {}
    errors: list[ValidationError] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not equals or not key:
            errors.append(ValidationError(f"Line {number}: write KEY=value.", code="invalid_line"))
        elif not ENVIRONMENT_KEY.fullmatch(key):
            errors.append(ValidationError(f"Line {number}: {KEY_MESSAGE}.", code="invalid_key"))
        elif key in environment:
            errors.append(
                ValidationError(
                    f"Line {number}: {key} is already set above; keep one line.",
                    code="duplicate",
                )
            )
        else:
            environment[key] = value
    if errors:
        raise ValidationError(errors)
    validate_environment_variables(environment)
    return environment


# -- a model's containers (sagemaker.md §1.2, inference-pipelines.md) ---------------------------


def validate_containers(containers: list[dict], mode: str) -> None:
    """A model's ContainerDefinitions under InferenceExecutionConfig.Mode `mode` (Serial or
    Direct; blank means Serial, SageMaker's default). One container is a single-container model."""
    mode = mode or "Serial"
    if mode not in ("Serial", "Direct"):
        raise ValidationError(
            "Choose Serial (an inference pipeline) or Direct (the caller picks a container).",
            code="invalid_mode",
        )
    if not 1 <= len(containers) <= 15:
        raise ValidationError("Use 1 to 15 containers.", code="container_count")
    if mode == "Direct" and len(containers) < 2:
        raise ValidationError(
            "Add a second container: a Direct model has 2 to 15 containers.",
            code="container_count",
        )
    hostnames = [container.get("ContainerHostname") or "" for container in containers]
    if mode == "Direct" and not all(hostnames):
        raise ValidationError(
            "Give every container a hostname, such as preprocess: a Direct call names the "
            "container it wants.",
            code="hostname_required",
        )
    if len(containers) > 1 and any(hostnames) and not all(hostnames):
        raise ValidationError(
            "Give every container a hostname, or none: in a pipeline, if one has a hostname, "
            "all must.",
            code="hostname_required",
        )
    seen: set[str] = set()
    for hostname in filter(None, hostnames):
        validate_resource_name(hostname)
        if hostname.lower() in seen:
            raise ValidationError(
                f"Give each container its own hostname; {hostname} is used twice.",
                code="duplicate_hostname",
            )
        seen.add(hostname.lower())
    multi_model = [container for container in containers if container.get("Mode") == "MultiModel"]
    if len(multi_model) > 1:
        raise ValidationError(
            "Keep one multi-model container at most; set the others to SingleModel.",
            code="multi_model",
        )
    # SageMaker allows one in a serial pipeline (multi-model-endpoints.md), but the local runtime
    # serves one only as a PrimaryContainer (runtime/host.py), so both backends get the same rule.
    if multi_model and len(containers) > 1:
        raise ValidationError(
            "Register a multi-model container as a model on its own, not in a pipeline.",
            code="multi_model",
        )
    validate_total_environment_size(
        [container.get("Environment") or {} for container in containers]
    )


# -- network (sagemaker.md §1.2 VpcConfig) -------------------------------------------------------

SUBNET_ID = re.compile(r"subnet-[0-9a-f]{8,17}")
SECURITY_GROUP_ID = re.compile(r"sg-[0-9a-f]{8,17}")


def parse_id_list(text: str) -> list[str]:
    """Ids separated by commas, spaces or new lines, in order."""
    return [item for item in re.split(r"[\s,]+", text) if item]


def _validate_ids(ids: list[str], pattern: re.Pattern, most: int, example: str) -> None:
    if not 1 <= len(ids) <= most:
        raise ValidationError(
            f"List 1 to {most} ids, such as {example}; this lists {len(ids)}.", code="id_count"
        )
    for item in ids:
        if not pattern.fullmatch(item):
            raise ValidationError(
                f"{item!r} is not an id; use one such as {example}.", code="invalid_id"
            )
    if len(set(ids)) != len(ids):
        raise ValidationError("List each id once.", code="duplicate_id")


def validate_subnets(ids: list[str]) -> None:
    _validate_ids(ids, SUBNET_ID, 16, "subnet-0abc1234")


def validate_security_groups(ids: list[str]) -> None:
    _validate_ids(ids, SECURITY_GROUP_ID, 5, "sg-0abc1234")


# -- production variants (sagemaker.md §1.3) -----------------------------------------------------

INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9]+\.[a-z0-9]+")
MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def validate_instance_count(value: int, cap: int) -> None:
    """InitialInstanceCount: at least 1, and at most the portal's configured cap."""
    if not _is_int(value) or not 1 <= value <= cap:
        raise ValidationError(
            f"Use a whole number of instances from 1 to {cap}, such as 1.", code="instance_count"
        )


def validate_weight(value: float) -> None:
    """InitialVariantWeight: traffic share = weight / sum of weights."""
    if not _is_number(value) or value < 0:
        raise ValidationError(
            "Use a weight of 0 or more, such as 1.0; each variant gets its weight's share of "
            "traffic.",
            code="invalid_weight",
        )


def validate_instance_type(value: str) -> None:
    if not INSTANCE_TYPE.fullmatch(value):
        raise ValidationError(
            "Use a SageMaker instance type such as ml.m5.large.", code="invalid_instance_type"
        )


def validate_memory_size(value: int) -> None:
    """Serverless MemorySizeInMB: an enum, though botocore checks only the minimum."""
    if not _is_int(value) or value not in MEMORY_SIZES:
        raise ValidationError(
            "Use one of 1024, 2048, 3072, 4096, 5120 or 6144 MB, such as 2048.",
            code="invalid_memory_size",
        )


def validate_max_concurrency(value: int) -> None:
    if not _is_int(value) or not 1 <= value <= 200:
        raise ValidationError(
            "Use a maximum concurrency from 1 to 200, such as 20.", code="invalid_concurrency"
        )


def validate_provisioned_concurrency(value: int, max_concurrency: int) -> None:
    if not _is_int(value) or not 1 <= value <= max_concurrency:
        raise ValidationError(
            f"Use a provisioned concurrency from 1 to {max_concurrency} (the maximum "
            "concurrency), such as 1.",
            code="invalid_concurrency",
        )


def validate_variants(variants: list[dict]) -> None:
    """An endpoint config's ProductionVariants: 1 to 10, uniquely named; serverless is alone."""
    if not 1 <= len(variants) <= 10:
        raise ValidationError("Use 1 to 10 variants.", code="variant_count")
    seen: set[str] = set()
    for variant in variants:
        name = variant.get("VariantName") or ""
        validate_resource_name(name)
        if name in seen:
            raise ValidationError(
                f"Give each variant its own name; {name} is used twice.", code="duplicate_variant"
            )
        seen.add(name)
    if len(variants) > 1 and any(variant.get("ServerlessConfig") for variant in variants):
        raise ValidationError(
            "Keep one variant: a serverless endpoint has exactly one.", code="variant_count"
        )


# -- async inference (sagemaker.md §1.3 AsyncInferenceConfig) ------------------------------------

SNS_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:(?P<region>[^:]+):\d{12}:[\w-]{1,256}")


def validate_s3_output_path(value: str) -> None:
    """An async S3OutputPath or S3FailurePath: an s3:// folder, at most 512 characters."""
    _split_s3_uri(value, 512, "s3://my-models/async-results/")


def validate_max_concurrent_invocations(value: int) -> None:
    if not _is_int(value) or not 1 <= value <= 1000:
        raise ValidationError(
            "Use 1 to 1000 concurrent invocations per instance, such as 4.",
            code="invalid_concurrency",
        )


def validate_sns_topic_arn(value: str) -> None:
    message = "Use an SNS topic ARN such as arn:aws:sns:eu-west-1:123456789012:inference-done."
    match = SNS_TOPIC_ARN.fullmatch(value)
    if match is None:
        raise ValidationError(message, code="invalid_topic")
    try:
        validate_region(match["region"])
    except ValidationError:
        raise ValidationError(message, code="invalid_topic") from None


# -- data capture (sagemaker.md §3) ---------------------------------------------------------------

TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # RFC 9110 §5.6.2
QUOTED_STRING = r'"([\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"'  # RFC 9110 §5.6.4, ASCII only
MIME_TYPE = re.compile(rf"{TCHARS}/{TCHARS}")
MEDIA_TYPE = re.compile(  # RFC 9110 §8.3.1: type/subtype *( OWS ";" OWS [ parameter ] )
    rf"{TCHARS}/{TCHARS}([ \t]*;[ \t]*({TCHARS}=({TCHARS}|{QUOTED_STRING}))?)*"
)


def validate_sampling_percentage(value: int) -> None:
    if not _is_int(value) or not 0 <= value <= 100:
        raise ValidationError(
            "Use a whole percentage from 0 to 100, such as 20.", code="invalid_percentage"
        )


def validate_capture_destination(value: str) -> None:
    """DestinationS3Uri: an s3:// folder, at most 512 characters."""
    _split_s3_uri(value, 512, "s3://my-models/capture/")


def validate_content_types(values: list[str]) -> None:
    """CsvContentTypes or JsonContentTypes: 1 to 10 MIME types of at most 256 characters."""
    if not 1 <= len(values) <= 10:
        raise ValidationError(
            "List 1 to 10 content types, such as text/csv.", code="content_type_count"
        )
    for value in values:
        if len(value) > 256 or not MIME_TYPE.fullmatch(value):
            raise ValidationError(
                f"{value[:40]!r} is not a content type; use type/subtype, such as "
                "application/json.",
                code="invalid_content_type",
            )


def validate_capture_allowed(kind: str) -> None:
    if kind == SERVERLESS:
        raise ValidationError(
            "Switch data capture off, or choose a real-time or async endpoint: serverless "
            "endpoints cannot capture.",
            code="capture_not_allowed",
        )


# -- autoscaling (sagemaker.md §4) ----------------------------------------------------------------


def validate_capacity(minimum: int, maximum: int, kind: str, cap: int) -> None:
    """Scalable target MinCapacity and MaxCapacity for an endpoint of `kind`."""
    if not _is_int(minimum) or not _is_int(maximum):
        raise ValidationError("Use whole numbers, such as 1 and 4.", code="invalid_capacity")
    # The API allows 0 for any variant, but a real-time variant at 0 instances cannot serve;
    # only an async endpoint wakes from zero (on its backlog alarm).
    lowest = 0 if kind == ASYNC else 1
    if minimum < lowest:
        raise ValidationError(
            f"Use a minimum of at least {lowest}"
            + ("." if lowest == 0 else ": only async endpoints can scale to zero."),
            code="invalid_minimum",
        )
    if maximum < max(minimum, 1):
        raise ValidationError(
            f"Use a maximum of at least {max(minimum, 1)} (no less than the minimum).",
            code="invalid_maximum",
        )
    if maximum > cap:
        raise ValidationError(f"Use a maximum of at most {cap}.", code="invalid_maximum")


def validate_target_value(value: float) -> None:
    if not _is_number(value) or value <= 0:
        raise ValidationError(
            "Use a target above 0, such as 70 invocations per instance.", code="invalid_target"
        )


def validate_cooldown(value: int) -> None:
    if not _is_int(value) or not 0 <= value <= 86400:
        raise ValidationError(
            "Use 0 to 86400 seconds, such as 300 (SageMaker's default).", code="invalid_cooldown"
        )


# -- invocation inputs (reliability.md §3.5, sagemaker.md §2.1-2.2) -------------------------------

PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
TARGET_MODEL = re.compile(r"\S[\x20-\x7e]*")
BODY_LIMITS = {  # kind: (bytes, bytes per unit, unit, what to do instead)
    REAL_TIME: (6_291_456, 1024 * 1024, "MB", "use an async endpoint for larger inputs"),
    SERVERLESS: (4_000_000, 1_000_000, "MB", "use a real-time or async endpoint for larger inputs"),
    ASYNC: (128_000, 1000, "KB", "upload larger inputs to S3 and send their location"),
}


def validate_header_value(value: str, name: str) -> None:
    """A request header such as Accept or CustomAttributes; line breaks would inject headers."""
    if len(value) > 1024:
        raise ValidationError(f"Shorten {name} to at most 1024 characters.", code="header_too_long")
    if not PRINTABLE_ASCII.fullmatch(value):
        raise ValidationError(
            f"Use only printable ASCII characters in {name}, with no line breaks, "
            "such as application/json.",
            code="header_characters",
        )


def validate_content_type(value: str) -> None:
    validate_header_value(value, "Content-Type")
    if not MEDIA_TYPE.fullmatch(value):
        raise ValidationError(
            "Use a media type such as text/csv or application/json; charset=utf-8.",
            code="invalid_content_type",
        )


def validate_target_model(value: str) -> None:
    """A multi-model TargetModel: a path relative to the model prefix, such as model-a.tar.gz."""
    if len(value) > 1024:
        raise ValidationError(
            "Shorten the target model to at most 1024 characters.", code="target_too_long"
        )
    message = (
        "Use a path under the model prefix, without .., a leading /, \\, # or ?, "
        "such as model-a.tar.gz or team/model-b.tar.gz."
    )
    if not TARGET_MODEL.fullmatch(value):
        raise ValidationError(
            "Use printable ASCII characters, starting with a non-space, such as model-a.tar.gz.",
            code="target_characters",
        )
    # The path is percent-decoded once before it is resolved, so `%2e%2e/` must fail too (the
    # MLflow path-traversal CVE class, reliability.md §3.5).
    for candidate in (value, unquote(value)):
        if (
            candidate.startswith("/")
            or ".." in candidate.split("/")
            or any(character in candidate for character in "\\#?\x00")
        ):
            raise ValidationError(message, code="target_path")


def validate_body_size(size: int, kind: str) -> None:
    """A request body of `size` bytes for an endpoint of `kind` (async: an inline body)."""
    limit, per_unit, unit, instead = BODY_LIMITS[kind]
    if size > limit:
        raise ValidationError(
            f"The body is {size / per_unit:.1f} {unit} ({size:,} bytes); {kind} endpoints take "
            f"at most {limit // per_unit} {unit} ({limit:,} bytes), so {instead}.",
            code="body_too_large",
        )
