"""Rate limiting in PostgreSQL: one row per accepted request instead of one hot row per key.

A single row per key rewritten on every request degrades badly when other long transactions keep old row
versions alive (every update walks the version chain). Rows are only inserted here, counted through the
(bucket, ts_ms) index under a per-key advisory lock, and deleted in bulk by the purge job.
The table is UNLOGGED: a crash only resets the windows. See apikeys/ratelimit.py.
"""

from django.db import migrations

CREATE = """
CREATE UNLOGGED TABLE apikeys_ratelimithit (
    bucket varchar(64) NOT NULL,
    ts_ms bigint NOT NULL
);
CREATE INDEX apikeys_ratelimithit_bucket_ts ON apikeys_ratelimithit (bucket, ts_ms);
CREATE INDEX apikeys_ratelimithit_ts ON apikeys_ratelimithit (ts_ms);

CREATE OR REPLACE FUNCTION paytrust_rate_limit_hit(p_bucket text, p_limit integer, p_window_ms bigint)
RETURNS TABLE (allowed boolean, used integer, oldest_ms bigint, now_ms bigint)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    v_now bigint;
    v_used integer;
    v_oldest bigint;
BEGIN
    -- Serialise the requests of one key; held until the calling statement's transaction ends.
    PERFORM pg_advisory_xact_lock(1919251317, hashtext(p_bucket));
    v_now := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    -- A new snapshot: sees every hit committed by the previous holder of the lock.
    SELECT count(*)::integer, min(h.ts_ms) INTO v_used, v_oldest
    FROM (
        SELECT r.ts_ms FROM apikeys_ratelimithit r
        WHERE r.bucket = p_bucket AND r.ts_ms > v_now - p_window_ms
        ORDER BY r.ts_ms
        LIMIT p_limit
    ) h;
    IF v_used < p_limit THEN
        INSERT INTO apikeys_ratelimithit (bucket, ts_ms) VALUES (p_bucket, v_now);
        v_used := v_used + 1;
        allowed := true;
        v_oldest := coalesce(v_oldest, v_now);
    ELSE
        allowed := false;
    END IF;
    used := v_used;
    oldest_ms := v_oldest;
    now_ms := v_now;
    RETURN NEXT;
END
$fn$;
"""

DROP = """
DROP FUNCTION IF EXISTS paytrust_rate_limit_hit(text, integer, bigint);
DROP TABLE IF EXISTS apikeys_ratelimithit;
"""


class Migration(migrations.Migration):
    dependencies = [("apikeys", "0002_ratelimit_idempotency")]

    operations = [
        migrations.DeleteModel(name="RateLimitWindow"),
        migrations.RunSQL(CREATE, reverse_sql=DROP),
    ]
