"""Portal users. A user's role is the highest of the role groups they belong to."""

from functools import cached_property

from django.contrib.auth.models import AbstractUser, Group
from django.db import models, transaction

from accounts.roles import Role


class User(AbstractUser):
    """A person who signs in. Superusers count as Admins."""

    must_change_password = models.BooleanField(
        default=False,
        help_text="Set for one-time passwords: the user picks their own before anything else.",
    )

    class Meta:
        ordering = ["username"]

    @cached_property
    def role(self) -> Role | None:
        """The highest role this user holds, or None for a user no Admin has given a role yet."""
        if not self.is_active:
            return None
        if self.is_superuser:
            return Role.ADMIN
        names = set(self.groups.values_list("name", flat=True))
        held = [role for role in Role if role.label in names]
        return max(held) if held else None

    def has_role(self, role: Role) -> bool:
        """True when the user holds `role` or a higher one."""
        return self.role is not None and self.role >= role

    @transaction.atomic
    def set_role(self, role: Role) -> None:
        """Make `role` this user's only role group."""
        role_groups = Group.objects.filter(name__in=Role.labels)
        self.groups.remove(*role_groups)
        # get_or_create: the migration makes the groups, but a flushed test database has none.
        self.groups.add(Group.objects.get_or_create(name=role.label)[0])
        self.__dict__.pop("role", None)
