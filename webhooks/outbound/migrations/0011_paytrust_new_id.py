"""`paytrust_new_id(prefix, ms)`: paytrust.ids.new_id's format made in SQL, for rows a statement creates from rows it
reads (an event's deliveries, one per endpoint that receives it, inserted in the event's own statement).

Same shape as `new_id`: `<prefix>_` + 8 base62 characters of the creation time `ms` (milliseconds since 1970,
from the application's clock, `paytrust.ids.now_ms`, like every other id and timestamp) + 16 base62
characters from the server's CSPRNG (`gen_random_uuid()` draws its bytes from pg_strong_random; only the 14 bytes
of a version-4 UUID that are wholly random are used, and bytes below 248 = 4 x 62 map uniformly onto the 62
symbols, as in Python). tests/webhooks/test_outbound_events.py compares the two.
"""

from django.db import migrations

FORWARD = """
DROP FUNCTION IF EXISTS paytrust_new_id(text);  -- this migration's first version (3004e65), never released
CREATE OR REPLACE FUNCTION paytrust_new_id(p_prefix text, p_ms bigint) RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL SAFE SET search_path = pg_catalog AS $fn$
DECLARE
    alphabet constant text := '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    ms bigint := p_ms;
    time_part text := '';
    random_part text := '';
    raw bytea;
    position integer;
    value integer;
BEGIN
    IF p_prefix !~ '^[a-z]{3}$' OR p_ms < 0 THEN
        RAISE EXCEPTION 'paytrust_new_id: bad prefix % or time %', p_prefix, p_ms;
    END IF;
    FOR position IN 1..8 LOOP
        time_part := substr(alphabet, (ms % 62)::integer + 1, 1) || time_part;
        ms := ms / 62;
    END LOOP;
    WHILE length(random_part) < 16 LOOP
        raw := uuid_send(gen_random_uuid());
        FOREACH position IN ARRAY ARRAY[0, 1, 2, 3, 4, 5, 7, 9, 10, 11, 12, 13, 14, 15] LOOP
            value := get_byte(raw, position);
            IF value < 248 AND length(random_part) < 16 THEN
                random_part := random_part || substr(alphabet, value % 62 + 1, 1);
            END IF;
        END LOOP;
    END LOOP;
    RETURN p_prefix || '_' || time_part || random_part;
END
$fn$;
"""

BACKWARD = (
    "DROP FUNCTION IF EXISTS paytrust_new_id(text, bigint); DROP FUNCTION IF EXISTS paytrust_new_id(text);"
)


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0010_blocked_and_reconciliation_events"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
