from collections.abc import Callable
from functools import partial

import pytest
from django.core.exceptions import ValidationError

from endpoints import validators as v

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
ROLE = "arn:aws:iam::123456789012:role/PortalSageMakerExecution"


def container(hostname: str = "", mode: str = "SingleModel", **extra: object) -> dict:
    found = {"Image": f"{ECR}/churn:1.0", "Mode": mode, **extra}
    if hostname:
        found["ContainerHostname"] = hostname
    return found


def variant(name: str, **extra: object) -> dict:
    return {"VariantName": name, **extra}


def message_of(check: Callable[[], object]) -> tuple[str, list[str | None]]:
    with pytest.raises(ValidationError) as caught:
        check()
    return " ".join(caught.value.messages), [error.code for error in caught.value.error_list]


# (what is checked, the bad value, a fragment of the message that says how to fix it)
BAD = [
    # names
    (v.validate_resource_name, "", "Use 1 to 63 letters, digits or hyphens"),
    (v.validate_resource_name, "-churn", "starting and ending with a letter or digit"),
    (v.validate_resource_name, "churn-", "starting and ending with a letter or digit"),
    (v.validate_resource_name, "churn_model", "letters, digits or hyphens"),
    (v.validate_resource_name, "churn.model", "letters, digits or hyphens"),
    (v.validate_resource_name, "a" * 64, "1 to 63"),
    (v.validate_resource_name, "bad name!", "such as churn-model-v2"),
    (v.validate_model_name, "model_1", "letters, digits or hyphens"),
    (v.validate_model_name, "m" * 64, "1 to 63"),
    (v.validate_model_name, "model-", "ending with a letter or digit"),
    # images
    (v.validate_image, "sklearn", "Use an ECR image URI such as 123456789012.dkr.ecr"),
    (v.validate_image, "docker.io/library/python:3.12", "Use an ECR image URI"),
    (v.validate_image, f"{ECR}/churn:1.0 --privileged", "Use an ECR image URI"),
    (v.validate_image, "12345.dkr.ecr.eu-west-1.amazonaws.com/churn", "ECR image URI"),
    (v.validate_image, "123456789012.dkr.ecr.mars-1.amazonaws.com/churn", "ECR image URI"),
    (v.validate_image, f"{ECR}/churn@sha256:abc", "ECR image URI"),
    (v.validate_image, f"{ECR}/" + "c" * 250, "ECR image URI"),
    (v.image_validator(allow_local=True), "tensorflow", "or a local serving image"),
    (v.image_validator(allow_local=True), "sklearn latest", "sklearn, python or llm"),
    # model artifacts
    (v.validate_model_data_url, "https://evil.example/model.tar.gz", "Use an s3:// URI"),
    (v.validate_model_data_url, "file:///etc/passwd", "Use an s3:// URI"),
    (v.validate_model_data_url, "s3://my-models/churn/model.zip", "Point at a .tar.gz archive"),
    (v.validate_model_data_url, "s3://my-models", "Point at a .tar.gz archive"),
    (v.validate_model_data_url, "s3://my-models/.tar.gz", "Point at a .tar.gz archive"),
    (v.validate_model_data_url, "s3://My_Models/model.tar.gz", "Use a bucket name of 3 to 63"),
    (v.validate_model_data_url, "s3://ab/model.tar.gz", "Use a bucket name"),
    (v.validate_model_data_url, "s3://my-models/../x/model.tar.gz", "Remove the .. folder"),
    (v.validate_model_data_url, "s3://my-models/a b/model.tar.gz", "Remove the spaces"),
    (v.validate_model_data_url, "s3://my-models/a\x00/model.tar.gz", "control characters"),
    (v.validate_model_data_url, "s3://my-models/" + "k" * 1010 + ".tar.gz", "at most 1024"),
    (v.validate_model_prefix, "s3://my-models/team-a", "End the folder with a slash"),
    (v.validate_model_prefix, "https://my-models.s3.amazonaws.com/team-a/", "s3:// URI"),
    (v.validate_model_prefix, "s3://my-models/team-a/../", "Remove the .. folder"),
    (
        partial(v.s3_uri_in, bucket="portal", prefix="models/"),
        "s3://other/models/m.tar.gz",
        "Use a location under s3://portal/models/, the environment's storage.",
    ),
    (
        partial(v.s3_uri_in, bucket="portal", prefix="models/"),
        "s3://portal/modelsx/m.tar.gz",
        "under s3://portal/models/",
    ),
    (
        partial(v.s3_uri_in, bucket="portal", prefix="models/"),
        "s3://portal/models/../m.tar.gz",
        "under s3://portal/models/",
    ),
    (
        partial(v.s3_uri_in, bucket="portal", prefix=""),
        "https://portal/m.tar.gz",
        "under s3://portal/",
    ),
    # roles
    (v.validate_role_arn, "arn:aws:iam::1234:role/x", "Use an IAM role ARN"),
    (v.validate_role_arn, "arn:aws:iam::123456789012:user/alice", "Use an IAM role ARN such as"),
    (v.validate_role_arn, ROLE + "/" + "x" * 2048, "20 to 2048 characters"),
    # environment variables
    (v.validate_environment_variables, {"1ABC": "x"}, "not starting with a digit"),
    (v.validate_environment_variables, {"MY-VAR": "x"}, "letters, digits and underscores"),
    (v.validate_environment_variables, {"A": "x" * 1025}, "Shorten the value of A"),
    (v.validate_environment_variables, {"A": "é" * 513}, "at most 1024 bytes"),
    (v.validate_environment_variables, {"A" * 1025: "x"}, "to at most 1024 bytes"),
    (v.validate_environment_variables, {"A": 3}, "Give A a text value"),
    (
        v.validate_environment_variables,
        {f"K{n}": "x" for n in range(101)},
        "Use at most 100 environment variables",
    ),
    (
        v.validate_total_environment_size,
        [{f"K{n}": "x" * 1000 for n in range(20)}] * 2,
        "keep them under 32 KB",
    ),
    (v.parse_environment_text, "A=1\n\nB 2", "Line 3: write KEY=value."),
    (v.parse_environment_text, "=value", "Line 1: write KEY=value."),
    (v.parse_environment_text, "# settings\n9LIVES=1", "Line 2: use letters, digits"),
    (v.parse_environment_text, "A=1\nA=2", "Line 2: A is already set above"),
    # containers
    (partial(v.validate_containers, mode="Serial"), [], "Use 1 to 15 containers."),
    (partial(v.validate_containers, mode="Serial"), [container()] * 16, "1 to 15 containers"),
    (partial(v.validate_containers, mode="Parallel"), [container()], "Choose Serial"),
    (partial(v.validate_containers, mode="Direct"), [container("a")], "Add a second container"),
    (
        partial(v.validate_containers, mode="Direct"),
        [container("a"), container()],
        "Give every container a hostname, such as preprocess",
    ),
    (
        partial(v.validate_containers, mode="Serial"),
        [container("a"), container()],
        "if one has a hostname, all must",
    ),
    (
        partial(v.validate_containers, mode="Direct"),
        [container("a"), container("A")],
        "its own hostname; A is used twice",
    ),
    (
        partial(v.validate_containers, mode="Direct"),
        [container("a"), container("b_c")],
        "Use 1 to 63 letters",
    ),
    (
        partial(v.validate_containers, mode="Serial"),
        [container(mode="MultiModel"), container(mode="MultiModel")],
        "Keep one multi-model container at most",
    ),
    (
        partial(v.validate_containers, mode="Serial"),
        [container(mode="MultiModel"), container()],
        "not in a pipeline",
    ),
    (
        partial(v.validate_containers, mode="Serial"),
        [container(Environment={f"K{n}": "x" * 1000 for n in range(20)}) for _ in range(2)],
        "under 32 KB",
    ),
    # network
    (v.validate_subnets, [], "List 1 to 16 ids, such as subnet-0abc1234"),
    (v.validate_subnets, ["subnet-0abc"], "is not an id; use one such as subnet-0abc1234"),
    (v.validate_subnets, ["subnet-0ABC1234"], "subnet-0abc1234"),
    (v.validate_subnets, [f"subnet-{n:08x}" for n in range(17)], "List 1 to 16 ids"),
    (v.validate_subnets, ["subnet-0abc1234", "subnet-0abc1234"], "List each id once."),
    (v.validate_security_groups, ["sg-0abc1234"] * 6, "List 1 to 5 ids"),
    (v.validate_security_groups, ["subnet-0abc1234"], "use one such as sg-0abc1234"),
    # variants
    (partial(v.validate_instance_count, cap=4), 0, "from 1 to 4"),
    (partial(v.validate_instance_count, cap=4), 5, "Use a whole number of instances from 1 to 4"),
    (partial(v.validate_instance_count, cap=4), 1.5, "whole number"),
    (v.validate_weight, -0.5, "Use a weight of 0 or more, such as 1.0"),
    (v.validate_weight, float("nan"), "weight of 0 or more"),
    (v.validate_instance_type, "m5.large", "such as ml.m5.large"),
    (v.validate_instance_type, "ml.m5", "ml.m5.large"),
    (v.validate_instance_type, "ML.M5.LARGE", "ml.m5.large"),
    (v.validate_memory_size, 512, "Use one of 1024, 2048, 3072, 4096, 5120 or 6144 MB"),
    (v.validate_memory_size, 1500, "6144 MB"),
    (v.validate_memory_size, 8192, "6144 MB"),
    (v.validate_max_concurrency, 0, "from 1 to 200"),
    (v.validate_max_concurrency, 201, "from 1 to 200"),
    (partial(v.validate_provisioned_concurrency, max_concurrency=10), 11, "from 1 to 10"),
    (partial(v.validate_provisioned_concurrency, max_concurrency=10), 0, "from 1 to 10"),
    (v.validate_variants, [], "Use 1 to 10 variants."),
    (v.validate_variants, [variant(f"v{n}") for n in range(11)], "1 to 10 variants"),
    (v.validate_variants, [variant("blue"), variant("blue")], "blue is used twice"),
    (v.validate_variants, [variant("all_traffic")], "Use 1 to 63 letters"),
    (
        v.validate_variants,
        [variant("a", ServerlessConfig={"MemorySizeInMB": 2048}), variant("b")],
        "a serverless endpoint has exactly one",
    ),
    # async
    (v.validate_s3_output_path, "https://my-models.s3.amazonaws.com/out/", "Use an s3:// URI"),
    (v.validate_s3_output_path, "s3://my-models/" + "o" * 500, "at most 512 characters"),
    (v.validate_max_concurrent_invocations, 0, "Use 1 to 1000"),
    (v.validate_max_concurrent_invocations, 1001, "1 to 1000 concurrent invocations"),
    (v.validate_sns_topic_arn, "arn:aws:sqs:eu-west-1:123456789012:q", "Use an SNS topic ARN"),
    (v.validate_sns_topic_arn, "arn:aws:sns:eu-west-1:1234:done", "SNS topic ARN such as"),
    (v.validate_sns_topic_arn, "arn:aws:sns:nowhere:123456789012:done", "SNS topic ARN"),
    (v.validate_sns_topic_arn, "arn:aws:sns:eu-west-1:123456789012:done.fifo", "SNS topic"),
    # data capture
    (v.validate_sampling_percentage, 101, "from 0 to 100"),
    (v.validate_sampling_percentage, -1, "Use a whole percentage from 0 to 100"),
    (v.validate_sampling_percentage, 12.5, "whole percentage"),
    (v.validate_capture_destination, "s3://my-models/" + "c" * 500, "at most 512"),
    (v.validate_capture_destination, "http://169.254.169.254/latest/", "Use an s3:// URI"),
    (v.validate_content_types, [], "List 1 to 10 content types"),
    (v.validate_content_types, ["text/csv"] * 11, "1 to 10 content types"),
    (v.validate_content_types, ["csv"], "use type/subtype, such as application/json"),
    (v.validate_content_types, ["text/csv\r\nX-Evil: 1"], "use type/subtype"),
    (v.validate_content_types, ["text/" + "c" * 260], "is not a content type"),
    (v.validate_capture_allowed, "serverless", "serverless endpoints cannot capture"),
    # autoscaling
    (
        lambda value: v.validate_capacity(value, 4, "real-time", cap=10),
        0,
        "only async endpoints can scale to zero",
    ),
    (
        lambda value: v.validate_capacity(value, 4, "async", cap=10),
        -1,
        "Use a minimum of at least 0",
    ),
    (
        lambda value: v.validate_capacity(3, value, "real-time", cap=10),
        2,
        "Use a maximum of at least 3",
    ),
    (lambda value: v.validate_capacity(0, value, "async", cap=10), 0, "maximum of at least 1"),
    (
        lambda value: v.validate_capacity(1, value, "real-time", cap=10),
        11,
        "Use a maximum of at most 10",
    ),
    (v.validate_target_value, 0, "Use a target above 0"),
    (v.validate_target_value, float("inf"), "target above 0"),
    (v.validate_cooldown, -1, "Use 0 to 86400 seconds, such as 300"),
    (v.validate_cooldown, 86401, "0 to 86400 seconds"),
    # invocation inputs
    (partial(v.validate_header_value, name="Accept"), "a" * 1025, "Shorten Accept to at most"),
    (
        partial(v.validate_header_value, name="CustomAttributes"),
        "a\r\nSet-Cookie: x",
        "printable ASCII characters in CustomAttributes, with no line breaks",
    ),
    (partial(v.validate_header_value, name="Accept"), "text/csv\n", "no line breaks"),
    (partial(v.validate_header_value, name="Accept"), "tëxt/csv", "printable ASCII"),
    (v.validate_content_type, "text", "Use a media type such as text/csv"),
    (v.validate_content_type, "text/csv\r\nX: 1", "no line breaks"),
    (v.validate_content_type, "text/csv; charset", "Use a media type"),
    (v.validate_content_type, "text/ csv", "media type"),
    (v.validate_target_model, "../secrets.tar.gz", "without .., a leading /"),
    (v.validate_target_model, "team/../../x.tar.gz", "without .."),
    (v.validate_target_model, "/etc/passwd", "a leading /"),
    (v.validate_target_model, "models\\x.tar.gz", "such as model-a.tar.gz"),
    (v.validate_target_model, "x.tar.gz#frag", "# or ?"),
    (v.validate_target_model, "x.tar.gz?version=2", "# or ?"),
    (v.validate_target_model, "%2e%2e/secret.tar.gz", "without .."),
    (v.validate_target_model, "%2Fetc%2Fpasswd", "a leading /"),
    (v.validate_target_model, "x%00.tar.gz", "without .."),
    (v.validate_target_model, "x\x00.tar.gz", "Use printable ASCII characters"),
    (v.validate_target_model, " model.tar.gz", "starting with a non-space"),
    (v.validate_target_model, "m" * 1025, "at most 1024 characters"),
    (
        partial(v.validate_body_size, kind="real-time"),
        6_291_457,
        "real-time endpoints take at most 6 MB (6,291,456 bytes)",
    ),
    (partial(v.validate_body_size, kind="serverless"), 4_000_001, "at most 4 MB (4,000,000 bytes)"),
    (
        partial(v.validate_body_size, kind="async"),
        200_000,
        "The body is 200.0 KB (200,000 bytes); async endpoints take at most 128 KB",
    ),
]


@pytest.mark.parametrize(("check", "value", "fragment"), BAD, ids=[bad[2] for bad in BAD])
def test_bad_value_is_refused_with_a_message_saying_how_to_fix_it(
    check: Callable, value: object, fragment: str
):
    message, codes = message_of(lambda: check(value))

    assert fragment in message
    assert all(codes)


GOOD = [
    (v.validate_resource_name, "churn-model-v2"),
    (v.validate_resource_name, "a--b"),
    (v.validate_resource_name, "A" * 63),
    (v.validate_model_name, "x"),
    (v.validate_model_name, "portal-churn-g12"),
    (v.validate_image, f"{ECR}/churn:1.0"),
    (v.validate_image, f"{ECR}/team/churn-model"),
    (v.validate_image, "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/churn"),
    (v.validate_image, f"{ECR}/churn@sha256:{'a' * 64}"),
    (v.image_validator(allow_local=True), "sklearn"),
    (v.image_validator(allow_local=True), "llm:0.3"),
    (v.image_validator(allow_local=True), f"{ECR}/python:latest"),
    (v.validate_model_data_url, "s3://my-models/churn/model.tar.gz"),
    (v.validate_model_data_url, "s3://my.models-1/model.tar.gz"),
    (v.validate_model_prefix, "s3://my-models/team-a/"),
    (v.validate_model_prefix, "s3://my-models/"),
    (partial(v.s3_uri_in, bucket="portal", prefix="models/"), "s3://portal/models/m.tar.gz"),
    (partial(v.s3_uri_in, bucket="portal", prefix=""), "s3://portal/anything/m.tar.gz"),
    (v.validate_role_arn, ROLE),
    (v.validate_role_arn, "arn:aws-cn:iam::123456789012:role/service-role/Exec"),
    (v.validate_environment_variables, {"SAGEMAKER_PROGRAM": "inference.py", "_X": ""}),
    (v.validate_environment_variables, {f"K{n}": "x" for n in range(100)}),
    (v.validate_total_environment_size, [{"A": "x" * 1000}] * 32),
    (partial(v.validate_containers, mode="Serial"), [container()]),
    (partial(v.validate_containers, mode=""), [container(mode="MultiModel")]),
    (partial(v.validate_containers, mode="Serial"), [container(), container()]),
    (partial(v.validate_containers, mode="Serial"), [container("a"), container("b")]),
    (partial(v.validate_containers, mode="Direct"), [container(f"c{n}") for n in range(15)]),
    (v.validate_subnets, ["subnet-0abc1234", "subnet-0123456789abcdef0"]),
    (v.validate_security_groups, ["sg-0abc1234"]),
    (partial(v.validate_instance_count, cap=4), 4),
    (v.validate_weight, 0),
    (v.validate_weight, 0.25),
    (v.validate_instance_type, "ml.g5.2xlarge"),
    (v.validate_memory_size, 6144),
    (v.validate_max_concurrency, 200),
    (partial(v.validate_provisioned_concurrency, max_concurrency=10), 10),
    (v.validate_variants, [variant("AllTraffic")]),
    (v.validate_variants, [variant("blue"), variant("green")]),
    (v.validate_variants, [variant("only", ServerlessConfig={"MemorySizeInMB": 2048})]),
    (v.validate_s3_output_path, "s3://my-models/async-results"),
    (v.validate_s3_output_path, "s3://my-models"),
    (v.validate_max_concurrent_invocations, 1000),
    (v.validate_sns_topic_arn, "arn:aws:sns:eu-west-1:123456789012:inference-done"),
    (v.validate_sampling_percentage, 0),
    (v.validate_sampling_percentage, 100),
    (v.validate_capture_destination, "s3://my-models/capture/"),
    (v.validate_content_types, ["text/csv", "application/vnd.api+json"]),
    (v.validate_capture_allowed, "real-time"),
    (v.validate_capture_allowed, "async"),
    (lambda value: v.validate_capacity(value, 1, "real-time", cap=10), 1),
    (lambda value: v.validate_capacity(value, 10, "async", cap=10), 0),
    (v.validate_target_value, 0.5),
    (v.validate_cooldown, 0),
    (v.validate_cooldown, 86400),
    (partial(v.validate_header_value, name="CustomAttributes"), "trace=abc; user=42"),
    (v.validate_content_type, "application/json"),
    (v.validate_content_type, "text/csv; charset=utf-8"),
    (v.validate_content_type, 'multipart/form-data; boundary="a b"'),
    (v.validate_target_model, "model-a.tar.gz"),
    (v.validate_target_model, "team/model b..v2.tar.gz"),
    (partial(v.validate_body_size, kind="real-time"), 6_291_456),
    (partial(v.validate_body_size, kind="serverless"), 4_000_000),
    (partial(v.validate_body_size, kind="async"), 128_000),
]


@pytest.mark.parametrize(("check", "value"), GOOD)
def test_good_value_is_accepted(check: Callable, value: object):
    check(value)


def test_at_least_fifty_bad_values_are_covered():
    assert len(BAD) >= 50


def test_environment_text_becomes_a_dict_without_blank_lines_or_comments():
    text = "# server settings\nSAGEMAKER_PROGRAM = inference.py\n\nWORKERS=2\nURL=a=b\n"

    assert v.parse_environment_text(text) == {
        "SAGEMAKER_PROGRAM": "inference.py",
        "WORKERS": "2",
        "URL": "a=b",
    }


def test_every_bad_environment_line_is_reported_by_its_number():
    message, _ = message_of(lambda: v.parse_environment_text("A=1\nnope\n2B=3"))

    assert "Line 2: write KEY=value." in message
    assert "Line 3: use letters" in message


def test_id_list_splits_on_commas_spaces_and_new_lines():
    text = " subnet-0abc1234, subnet-0abc1235\nsubnet-0abc1236  ,,"

    assert v.parse_id_list(text) == ["subnet-0abc1234", "subnet-0abc1235", "subnet-0abc1236"]


def test_id_list_of_blank_text_is_empty():
    assert v.parse_id_list(" \n ") == []


def test_image_validator_without_local_images_refuses_a_local_name():
    message, _ = message_of(lambda: v.image_validator(allow_local=False)("sklearn"))

    assert "local serving image" not in message


def test_body_size_message_states_the_size_in_megabytes():
    message, _ = message_of(lambda: v.validate_body_size(7 * 1024 * 1024, "real-time"))

    assert "The body is 7.0 MB (7,340,032 bytes)" in message
    assert "use an async endpoint for larger inputs" in message


def test_name_message_matches_the_style_guide():
    message, codes = message_of(lambda: v.validate_resource_name("bad name!"))

    assert message.startswith(
        "Use 1 to 63 letters, digits or hyphens, starting and ending with a letter or digit"
    )
    assert codes == ["invalid_name"]
