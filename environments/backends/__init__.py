"""Provider backends: the one way the portal talks to SageMaker or to the local runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING

from environments.backends.base import Backend

if TYPE_CHECKING:
    from environments.models import Environment


def get_backend(environment: Environment) -> Backend:
    """The backend for the environment's kind. Building one calls nothing: the first provider
    call makes the session (and assumes the role, if any)."""
    # Imported here so that a page which never talks to a provider never loads boto3.
    if environment.kind == "aws":
        from environments.backends.aws import AwsBackend

        return AwsBackend(environment)
    if environment.kind == "local":
        from environments.backends.local import LocalBackend

        return LocalBackend(environment)
    raise ValueError(f"No backend for an environment of kind {environment.kind!r}.")
