"""AWS's rules for the values an Environment holds; each message says how to fix the value."""

from django.core.validators import RegexValidator

validate_region = RegexValidator(
    r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$",
    "Use an AWS Region code such as eu-west-1 or us-east-1.",
)
validate_bucket = RegexValidator(
    r"^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
    "Use 3 to 63 lowercase letters, digits, dots or hyphens, starting and ending with a letter "
    "or digit (S3 bucket naming rules).",
)
validate_prefix = RegexValidator(
    r"^([A-Za-z0-9!_.*'()-]+/)*$",
    "Use folder names of letters, digits and ! _ . * ' ( ) -, each ending with a slash, "
    "such as portal/ (or leave it empty).",
)
validate_role_arn = RegexValidator(
    r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$",
    "Use an IAM role ARN such as arn:aws:iam::123456789012:role/PortalSageMakerExecution.",
)
validate_external_id = RegexValidator(
    r"^[\w+=,.@:/-]{2,1224}$",
    "Use 2 to 1224 letters, digits or + = , . @ : / - _ characters.",
)
