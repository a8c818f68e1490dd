"""`paytrust_assert(ok, sqlstate, message)`: fail the calling statement (and so everything it wrote) unless `ok`.

A statement that writes from values read earlier by another statement can check, in its own snapshot, that those
values still hold, and abort as a whole when they do not: invoice creation's gateway account and fee, read from
a per-process cache, are checked this way by the statement that writes the invoice
(`gateways.selectors.gateway_account_with_fee`). The caller recognises the failure by its SQLSTATE.
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
        ("gateways", "0008_manual_bank_transfer"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
