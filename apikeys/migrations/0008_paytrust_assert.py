"""`paytrust_assert(ok, sqlstate, message)`: fails the statement that evaluates it when `ok` is not true.

For a statement made of data-modifying CTEs whose effect is only right if one of them touched a row: its final
SELECT evaluates the assertion over that CTE, and a false one aborts the whole statement (all its CTEs), which in
autocommit is its own transaction. Used by the stored Idempotency-Key replay in an invoice's statement
(`apikeys.idempotency.completion_cte`): the claim must still be this request's, or nothing is written.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION paytrust_assert(p_ok boolean, p_sqlstate text, p_message text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS $fn$
BEGIN
    IF p_ok IS NOT TRUE THEN
        RAISE EXCEPTION USING ERRCODE = p_sqlstate, MESSAGE = p_message;
    END IF;
    RETURN true;
END
$fn$;
"""

BACKWARD = "DROP FUNCTION IF EXISTS paytrust_assert(boolean, text, text);"


class Migration(migrations.Migration):
    dependencies = [
        ("apikeys", "0007_back_office_permissions"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
