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


def grant_role_permissions(app_label: str, added: dict[str, tuple[str, ...]]) -> migrations.RunPython:
    """Add the permissions `added` ({"finance": ("payments.refund_payment", …), …}) to the staff role groups
    (docs/adr/0042), creating the app's permissions first: on a new database Django creates them only after all
    migrations (post_migrate). Reversed by removing them again. The role migrations' deltas use it."""

    def permissions(apps, names):
        Permission = apps.get_model("auth", "Permission")
        return [
            Permission.objects.get(content_type__app_label=name.split(".")[0], codename=name.split(".")[1])
            for name in names
        ]

    def grant(apps, schema_editor):
        from django.apps import apps as global_apps
        from django.contrib.auth.management import create_permissions

        create_permissions(global_apps.get_app_config(app_label), verbosity=0, apps=apps)
        Group = apps.get_model("auth", "Group")
        for role, names in added.items():
            group, _ = Group.objects.get_or_create(name=role)
            group.permissions.add(*permissions(apps, names))

    def revoke(apps, schema_editor):
        Group = apps.get_model("auth", "Group")
        for role, names in added.items():
            group = Group.objects.filter(name=role).first()
            if group is not None:
                group.permissions.remove(*permissions(apps, names))

    return migrations.RunPython(grant, revoke)
