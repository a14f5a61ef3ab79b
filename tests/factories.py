"""Test data factories."""

import factory
from django.contrib.auth import get_user_model

from accounts.roles import Role
from environments.models import Environment

PASSWORD = "a long test password 42"


class UserFactory(factory.django.DjangoModelFactory):
    """A user holding `role` (a Role, or None for an account without one)."""

    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def role(self, create: bool, extracted: Role | None, **kwargs: object) -> None:
        self.save()
        if extracted is not None:
            self.set_role(extracted)


class EnvironmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Environment

    name = factory.Sequence(lambda n: f"env-{n}")
    kind = Environment.Kind.LOCAL
    bucket = "portal-test"
    prefix = "portal/"
