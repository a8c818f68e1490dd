"""The PostgreSQL velocity check in one round trip (risk/velocity.py, docs/adr/0053): `paytrust_risk_check`.

In one call: the advisory locks of the attempt's keys (sorted by the caller), then - each statement of a VOLATILE
PL/pgSQL function takes a fresh READ COMMITTED snapshot, so after the locks are granted every attempt committed
before is seen - the settings row's version, whether the customer e-mail has a paid invoice at this merchant+mode,
the hour and day counts of each key, and, when the caller allows it (no block-list hit), no limit would be
exceeded and the settings are still the version the caller scored with, the attempt's rows. The work runs in a subtransaction (BEGIN … EXCEPTION): any error, a cancellation
included, is rolled back to it and returned as `error` instead of aborting the caller's transaction (initiation's
phase 1), which then proceeds flagged (`risk_engine_error`) without a client-side SAVEPOINT round trip.
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION paytrust_risk_check(
    p_merchant text, p_mode text, p_email text, p_keys text[], p_lock_ids bigint[],
    p_hour_limits integer[], p_day_limits integer[], p_record boolean, p_version timestamptz
)
RETURNS TABLE (settings_version timestamptz, paid_before boolean, hours integer[], days integer[],
               recorded boolean, error text)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    n integer := coalesce(array_length(p_keys, 1), 0);
    i integer;
    h integer;
    d integer;
    v_over boolean := false;
    v_now timestamptz;
BEGIN
    hours := '{}';
    days := '{}';
    recorded := false;
    BEGIN
        PERFORM pg_advisory_xact_lock(k) FROM unnest(p_lock_ids) WITH ORDINALITY AS t(k, o) ORDER BY o;
        v_now := clock_timestamp();
        settings_version := (
            SELECT s.updated_at FROM risk_risksettings s WHERE s.merchant_id = p_merchant AND s.mode = p_mode
        );
        paid_before := p_email <> '' AND EXISTS (
            SELECT 1 FROM invoices_invoice v
            WHERE v.customer_email = p_email AND v.merchant_id = p_merchant AND v.mode = p_mode
              AND v.amount_paid_minor > 0
        );
        FOR i IN 1 .. n LOOP
            SELECT count(*) FILTER (WHERE r.created_at > v_now - interval '1 hour'), count(*)
              INTO h, d
              FROM risk_velocityhit r
             WHERE r.merchant_id = p_merchant AND r.mode = p_mode AND r.key = p_keys[i]
               AND r.created_at > v_now - interval '1 day';
            hours := hours || h;
            days := days || d;
            IF (p_hour_limits[i] IS NOT NULL AND h + 1 > p_hour_limits[i])
               OR (p_day_limits[i] IS NOT NULL AND d + 1 > p_day_limits[i]) THEN
                v_over := true;
            END IF;
        END LOOP;
        -- Recorded only under the rules the caller scored with: if the settings changed meanwhile (another
        -- process saved them), nothing is recorded and the caller asks again with the new rules.
        IF p_record AND NOT v_over AND n > 0 AND settings_version IS NOT DISTINCT FROM p_version THEN
            INSERT INTO risk_velocityhit (merchant_id, mode, key, created_at)
            SELECT p_merchant, p_mode, k, v_now FROM unnest(p_keys) AS k;
            recorded := true;
        END IF;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        error := SQLSTATE || ': ' || SQLERRM;
        recorded := false;
    END;
    RETURN NEXT;
END
$fn$;
"""

BACKWARD = (
    "DROP FUNCTION IF EXISTS paytrust_risk_check(text, text, text, text[], bigint[], integer[], integer[], boolean, "
    "timestamptz);"
)


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0001_risk_settings_and_velocity"),
        ("invoices", "0001_initial"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
