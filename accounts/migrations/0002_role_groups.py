"""The four role groups exist in every database."""

from django.db import migrations

ROLE_GROUPS = ["Viewer", "Engineer", "Deployer", "Admin"]


def create_groups(apps, schema_editor) -> None:
    Group = apps.get_model("auth", "Group")
    for name in ROLE_GROUPS:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
