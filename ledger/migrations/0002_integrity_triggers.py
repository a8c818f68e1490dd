"""The ledger's integrity in the database itself, whatever code writes to it:

- `ledger_entry_balanced`: a DEFERRED constraint trigger that, at commit, checks each movement that got entries in
  the transaction: its entries sum to zero and every one is on an account of the movement's merchant, mode and
  currency. An unbalanced or cross-currency posting makes the COMMIT fail; nothing of it is written.
- `ledger_append_only`: UPDATE and DELETE on movements and entries are refused (corrections are reversing
  movements). TRUNCATE is left alone (test databases are emptied with it).
"""

from django.db import migrations

SQL = """
CREATE FUNCTION ledger_check_movement() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total bigint;
    foreign_lines integer;
BEGIN
    SELECT COALESCE(SUM(e.amount_minor), 0),
           COUNT(*) FILTER (WHERE a.merchant_id <> m.merchant_id OR a.mode <> m.mode OR a.currency <> m.currency)
      INTO total, foreign_lines
      FROM ledger_entry e
      JOIN ledger_account a ON a.id = e.account_id
      JOIN ledger_movement m ON m.id = e.movement_id
     WHERE e.movement_id = NEW.movement_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger movement % is not balanced: its entries sum to %', NEW.movement_id, total
            USING ERRCODE = 'check_violation';
    END IF;
    IF foreign_lines > 0 THEN
        RAISE EXCEPTION 'ledger movement % has entries on another merchant''s, mode''s or currency''s account',
            NEW.movement_id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER ledger_entry_balanced
    AFTER INSERT ON ledger_entry
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_movement();

CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % refused (post a reversing movement instead)',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER ledger_movement_append_only BEFORE UPDATE OR DELETE ON ledger_movement
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE OR DELETE ON ledger_entry
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
"""

REVERSE_SQL = """
DROP TRIGGER ledger_entry_append_only ON ledger_entry;
DROP TRIGGER ledger_movement_append_only ON ledger_movement;
DROP FUNCTION ledger_refuse_change();
DROP TRIGGER ledger_entry_balanced ON ledger_entry;
DROP FUNCTION ledger_check_movement();
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunSQL(SQL, REVERSE_SQL)]
