"""Migration helpers shared by the apps' migrations."""

from __future__ import annotations

from django.db import migrations


def drop_pattern_ops_index(app_label: str, model_name: str, field_name: str) -> migrations.RunPython:
    """Drop the `varchar_pattern_ops` copy PostgreSQL's schema editor adds beside the index of a varchar primary key
    (`<table>_<column>_<hash>_like`). It serves only `LIKE 'prefix%'` under a non-C collation, which no query here
    uses, and costs every insert. Reversible (recreated as Django would)."""

    def _field(apps):
        model = apps.get_model(app_label, model_name)
        return model, model._meta.get_field(field_name)

    def forward(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        model, field = _field(apps)
        name = schema_editor._create_index_name(model._meta.db_table, [field.column], suffix="_like")
        schema_editor.execute(schema_editor._delete_index_sql(model, name))

    def backward(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        model, field = _field(apps)
        statement = schema_editor._create_like_index_sql(model, field)
        if statement is not None:
            schema_editor.execute(statement)

    return migrations.RunPython(forward, backward)
