"""The database itself refuses to change an approved card version (PostgreSQL: or delete it), so
not even a raw UPDATE or a queryset .update() slips past CardVersion.save(). SQLite guards
updates only: its DELETE FROM, which a test flush runs, would fire a delete trigger."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION modelcards_refuse_approved_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'card version % is approved and cannot change', OLD.id;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER modelcards_cardversion_approved_immutable
    BEFORE UPDATE OR DELETE ON modelcards_cardversion
    FOR EACH ROW WHEN (OLD.approved_at IS NOT NULL)
    EXECUTE FUNCTION modelcards_refuse_approved_change();
"""
SQLITE_CREATE = """
CREATE TRIGGER modelcards_cardversion_approved_immutable
    BEFORE UPDATE ON modelcards_cardversion
    FOR EACH ROW WHEN OLD.approved_at IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'card version is approved and cannot change');
END;
"""
DROP = """
DROP TRIGGER IF EXISTS modelcards_cardversion_approved_immutable ON modelcards_cardversion;
DROP FUNCTION IF EXISTS modelcards_refuse_approved_change();
"""


def create(apps: object, schema_editor: object) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)  # no params: the % in RAISE is literal
    elif schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE_CREATE)


def drop(apps: object, schema_editor: object) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)
    elif schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS modelcards_cardversion_approved_immutable")


class Migration(migrations.Migration):
    dependencies = [("modelcards", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
