"""Recording changes: models registered here are audited on every save and delete.

The entry is written by the same database connection right after the change, so inside the
caller's `transaction.atomic()` both commit or neither does. Views that change things open one.
"""

import contextvars
from collections.abc import Iterable

from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.signals import post_delete, post_save, pre_save

from audit.models import AuditEntry

MASK = "••••••"
current_actor: contextvars.ContextVar = contextvars.ContextVar("audit_actor", default=None)
_registry: dict[type[models.Model], tuple[set[str], set[str]]] = {}


def jsonable(value: object) -> object:
    """A value as JSON would hold it: dates and decimals as text."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return DjangoJSONEncoder().default(value) if not isinstance(value, dict | list) else value


def snapshot(instance: models.Model) -> dict[str, object]:
    """The audited field values of `instance` (foreign keys by id)."""
    exclude, masked = _registry[type(instance)]
    values = {}
    for field in instance._meta.concrete_fields:
        # The id and timestamps say nothing the entry itself does not already say.
        automatic = field.primary_key or getattr(field, "auto_now", False)
        if field.name in exclude or automatic or getattr(field, "auto_now_add", False):
            continue
        value = getattr(instance, field.attname)
        values[field.name] = MASK if field.name in masked and value else jsonable(value)
    return values


def record(
    instance: models.Model,
    action: str,
    before: dict[str, object],
    after: dict[str, object],
) -> AuditEntry | None:
    """Write one audit entry for a change to `instance` by the current actor."""
    names = list(dict.fromkeys([*after, *before]))  # in field order, as the model declares them
    empty = (None, "")
    changes = {
        name: [before.get(name), after.get(name)]
        for name in names
        if before.get(name) != after.get(name)
        and not (before.get(name) in empty and after.get(name) in empty)
    }
    if action == AuditEntry.Action.UPDATE and not changes:
        return None
    actor = current_actor.get()
    return AuditEntry.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_name=actor.get_username()
        if actor is not None and actor.is_authenticated
        else "system",
        action=action,
        content_type=ContentType.objects.get_for_model(type(instance)),
        object_id=str(instance.pk),
        object_repr=str(instance)[:200],
        changes=changes,
    )


def _before_save(sender: type[models.Model], instance: models.Model, **kwargs: object) -> None:
    previous = sender._base_manager.filter(pk=instance.pk).first() if instance.pk else None
    instance._audit_before = snapshot(previous) if previous is not None else None
    masked = _registry[sender][1]
    instance._audit_masked_changed = {
        name
        for name in masked
        if previous is not None and getattr(previous, name) != getattr(instance, name)
    }


def _after_save(
    sender: type[models.Model], instance: models.Model, created: bool, **kwargs: object
) -> None:
    before = getattr(instance, "_audit_before", None) or {}
    after = snapshot(instance)
    for name in getattr(instance, "_audit_masked_changed", set()):
        after[name] = MASK + " (changed)"
    record(instance, "create" if created else "update", before, after)


def _after_delete(sender: type[models.Model], instance: models.Model, **kwargs: object) -> None:
    record(instance, "delete", snapshot(instance), {})


def register(
    model: type[models.Model], exclude: Iterable[str] = (), masked: Iterable[str] = ()
) -> None:
    """Audit every save and delete of `model`. Masked fields show only that they changed."""
    _registry[model] = (set(exclude), set(masked))
    uid = f"audit-{model._meta.label}"
    pre_save.connect(_before_save, sender=model, dispatch_uid=uid)
    post_save.connect(_after_save, sender=model, dispatch_uid=uid)
    post_delete.connect(_after_delete, sender=model, dispatch_uid=uid)
