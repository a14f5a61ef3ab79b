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


class LoginFailure(models.Model):
    """One wrong password (or unknown username) at the sign-in form, kept for an hour so
    `accounts.throttle` can count recent failures per username and per (username, address)."""

    username = models.CharField(max_length=150, help_text="As typed, lowercased.")
    address = models.GenericIPAddressField()
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["username", "at"])]

    def __str__(self) -> str:
        return f"{self.username} from {self.address} at {self.at:%Y-%m-%d %H:%M:%S}"


class UserSession(models.Model):
    """Which sessions belong to which user, so signing out or changing a password can end the
    user's sessions in every other browser too (`accounts.sessions`)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    session_key = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.created_at:%Y-%m-%d %H:%M})"
