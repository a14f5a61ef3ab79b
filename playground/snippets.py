"""The current request as code to copy: boto3, the AWS CLI, and curl against the local runtime.
Every value is quoted for its language (repr for Python, shlex.quote for the shell), so a body
or header holding quotes or `$(...)` stays data."""

import shlex

from django.conf import settings

from playground.models import Invocation

INLINE_BODY_CHARS = 2000  # longer or binary bodies are read from a file in the snippets
BODY_FILE = "body.bin"
OUTPUT_FILE = "answer.out"


def inline_body(invocation: Invocation) -> str | None:
    """The body as text if it is short and printable enough to paste; None to use a file."""
    if invocation.request_size > INLINE_BODY_CHARS:
        return None
    try:
        return invocation.request_body().decode()
    except UnicodeDecodeError:
        return None


def parameters(invocation: Invocation) -> list[tuple[str, str, str]]:
    """(boto3 name, CLI option, HTTP header) with the value, for every header the request set."""
    found = [
        ("ContentType", "--content-type", "Content-Type", invocation.content_type),
        ("Accept", "--accept", "Accept", invocation.accept),
        (
            "CustomAttributes",
            "--custom-attributes",
            "X-Amzn-SageMaker-Custom-Attributes",
            invocation.custom_attributes,
        ),
        ("TargetModel", "--target-model", "X-Amzn-SageMaker-Target-Model", invocation.target_model),
        (
            "TargetVariant",
            "--target-variant",
            "X-Amzn-SageMaker-Target-Variant",
            invocation.target_variant,
        ),
        (
            "TargetContainerHostname",
            "--target-container-hostname",
            "X-Amzn-SageMaker-Target-Container-Hostname",
            invocation.target_container,
        ),
    ]
    if invocation.mode == Invocation.Mode.STREAM:
        found = [item for item in found if item[0] != "TargetModel"]
    return [item for item in found if item[3]]


def environment_of(invocation: Invocation) -> object | None:
    return invocation.endpoint.environment if invocation.endpoint else None


def boto3_snippet(invocation: Invocation) -> str:
    environment = environment_of(invocation)
    local = environment is not None and environment.is_local
    lines = ["import boto3", ""]
    if local:
        lines += [
            "runtime = boto3.client(",
            '    "sagemaker-runtime",',
            f"    endpoint_url={settings.LOCAL_RUNTIME_URL!r},",
            '    region_name="us-east-1",',
            '    aws_access_key_id="local",',
            '    aws_secret_access_key="local",',
            ")",
        ]
    else:
        region = environment.region if environment is not None else ""
        lines.append(f'runtime = boto3.client("sagemaker-runtime", region_name={region!r})')
    if invocation.mode == Invocation.Mode.ASYNC:
        call = ["", "response = runtime.invoke_endpoint_async("]
        call.append(f"    EndpointName={invocation.endpoint_name!r},")
        call.append(f"    InputLocation={invocation.input_location!r},")
        call += [f"    {name}={value!r}," for name, _, _, value in parameters(invocation)]
        call += [")", 'print(response["OutputLocation"])']
        return "\n".join(lines + call)
    body = inline_body(invocation)
    if body is None:
        lines += ["", f"with open({BODY_FILE!r}, 'rb') as file:", "    body = file.read()"]
    lines.append("")
    operation = (
        "invoke_endpoint_with_response_stream"
        if invocation.mode == Invocation.Mode.STREAM
        else "invoke_endpoint"
    )
    call = [f"response = runtime.{operation}("]
    call.append(f"    EndpointName={invocation.endpoint_name!r},")
    call += [f"    {name}={value!r}," for name, _, _, value in parameters(invocation)]
    call.append(f"    Body={body!r}," if body is not None else "    Body=body,")
    call.append(")")
    if invocation.mode == Invocation.Mode.STREAM:
        call += [
            'for event in response["Body"]:',
            '    print(event["PayloadPart"]["Bytes"].decode(), end="", flush=True)',
        ]
    else:
        call.append('print(response["Body"].read().decode())')
    return "\n".join(lines + call)


def body_file_command(invocation: Invocation) -> list[str]:
    """A shell line that writes the body to body.bin, when it is short text."""
    body = inline_body(invocation)
    if body is None:
        return [f"# Save the request body as {BODY_FILE} first."]
    return [f"printf '%s' {shlex.quote(body)} > {BODY_FILE}"]


def cli_snippet(invocation: Invocation) -> str:
    environment = environment_of(invocation)
    lines = [] if invocation.mode == Invocation.Mode.ASYNC else body_file_command(invocation)
    operation = {
        Invocation.Mode.ASYNC: "invoke-endpoint-async",
        Invocation.Mode.STREAM: "invoke-endpoint-with-response-stream",
    }.get(invocation.mode, "invoke-endpoint")
    parts = [f"aws sagemaker-runtime {operation}"]
    parts.append(f"--endpoint-name {shlex.quote(invocation.endpoint_name)}")
    if invocation.mode == Invocation.Mode.ASYNC:
        parts.append(f"--input-location {shlex.quote(invocation.input_location)}")
    else:
        parts.append(f"--body fileb://{BODY_FILE}")
    parts += [f"{option} {shlex.quote(value)}" for _, option, _, value in parameters(invocation)]
    if environment is not None and environment.is_local:
        parts.append(f"--endpoint-url {shlex.quote(settings.LOCAL_RUNTIME_URL)}")
        parts.append("--region us-east-1")
    elif environment is not None and environment.region:
        parts.append(f"--region {shlex.quote(environment.region)}")
    if invocation.mode != Invocation.Mode.ASYNC:
        parts.append(OUTPUT_FILE)
    lines.append(" \\\n  ".join(parts))
    if invocation.mode == Invocation.Mode.REAL_TIME:
        lines.append(f"cat {OUTPUT_FILE}")
    return "\n".join(lines)


def curl_snippet(invocation: Invocation) -> str | None:
    """curl against the local runtime; None for AWS, whose requests need SigV4 signing."""
    environment = environment_of(invocation)
    if environment is None or not environment.is_local:
        return None
    path = {
        Invocation.Mode.ASYNC: "async-invocations",
        Invocation.Mode.STREAM: "invocations-response-stream",
    }.get(invocation.mode, "invocations")
    url = f"{settings.LOCAL_RUNTIME_URL}/endpoints/{invocation.endpoint_name}/{path}"
    headers = [(header, value) for _, _, header, value in parameters(invocation)]
    if invocation.mode == Invocation.Mode.ASYNC:
        # InvokeEndpointAsync takes even the types as X-Amzn-SageMaker-* headers.
        headers = [
            (f"X-Amzn-SageMaker-{name}" if name in ("Content-Type", "Accept") else name, value)
            for name, value in headers
        ]
        headers.append(("X-Amzn-SageMaker-InputLocation", invocation.input_location))
        lines = []
    else:
        lines = body_file_command(invocation)
    parts = ["curl -sS" + (" --no-buffer" if invocation.mode == Invocation.Mode.STREAM else "")]
    parts.append(f"-X POST {shlex.quote(url)}")
    parts += [f"-H {shlex.quote(f'{name}: {value}')}" for name, value in headers]
    if invocation.mode != Invocation.Mode.ASYNC:
        parts.append(f"--data-binary @{BODY_FILE}")
    lines.append(" \\\n  ".join(parts))
    return "\n".join(lines)


def snippets(invocation: Invocation) -> list[tuple[str, str]]:
    """(label, code) for each snippet that applies to this invocation."""
    found = [("boto3", boto3_snippet(invocation)), ("AWS CLI", cli_snippet(invocation))]
    curl = curl_snippet(invocation)
    if curl is not None:
        found.append(("curl", curl))
    return found
