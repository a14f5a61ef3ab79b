"""Audit entries have no change or delete permission, so no one can be granted one."""

from django.db import migrations


def remove_permissions(apps, schema_editor) -> None:
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(
        content_type__app_label="audit",
        codename__in=["change_auditentry", "delete_auditentry"],
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="auditentry",
            options={
                "base_manager_name": "objects",
                "default_permissions": ("add", "view"),
                "ordering": ["-at", "-pk"],
                "verbose_name_plural": "audit entries",
            },
        ),
        migrations.RunPython(remove_permissions, migrations.RunPython.noop),
    ]
