"""Defence in depth for invoice immutability (docs/adr/0022): once `payment_initiated_at` is set, PostgreSQL
itself refuses changes to what is charged - even from code that bypasses `invoices.services` (a raw
`Invoice.objects.update(...)`, a shell session, a future bug). The services check first and answer 409
`invoice_immutable`; these triggers only fire when something went around them.
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION invoices_invoice_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.payment_initiated_at IS NOT NULL THEN
            RAISE EXCEPTION 'invoice_immutable: invoice % has a payment initiated and cannot be deleted', OLD.id
                USING ERRCODE = 'P0001';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.payment_initiated_at IS NOT NULL AND (
           NEW.payment_initiated_at IS DISTINCT FROM OLD.payment_initiated_at
        OR NEW.merchant_id IS DISTINCT FROM OLD.merchant_id
        OR NEW.mode IS DISTINCT FROM OLD.mode
        OR NEW.currency IS DISTINCT FROM OLD.currency
        OR NEW.gateway_account_id IS DISTINCT FROM OLD.gateway_account_id
        OR NEW.gateway IS DISTINCT FROM OLD.gateway
        OR NEW.subtotal_minor IS DISTINCT FROM OLD.subtotal_minor
        OR NEW.tax_total_minor IS DISTINCT FROM OLD.tax_total_minor
        OR NEW.service_fee_minor IS DISTINCT FROM OLD.service_fee_minor
        OR NEW.total_minor IS DISTINCT FROM OLD.total_minor
        OR NEW.fee_percent IS DISTINCT FROM OLD.fee_percent
        OR NEW.fee_fixed_minor IS DISTINCT FROM OLD.fee_fixed_minor
        OR NEW.installment_plan::jsonb IS DISTINCT FROM OLD.installment_plan::jsonb
        OR NEW.parent_invoice_id IS DISTINCT FROM OLD.parent_invoice_id
    ) THEN
        RAISE EXCEPTION 'invoice_immutable: invoice % has a payment initiated', OLD.id USING ERRCODE = 'P0001';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER invoices_invoice_guard
    BEFORE UPDATE OR DELETE ON invoices_invoice
    FOR EACH ROW EXECUTE FUNCTION invoices_invoice_guard();

CREATE OR REPLACE FUNCTION invoices_child_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    target_invoice varchar;
    initiated timestamptz;
BEGIN
    IF TG_OP = 'INSERT' THEN
        target_invoice := NEW.invoice_id;
    ELSE
        target_invoice := OLD.invoice_id;
    END IF;
    SELECT payment_initiated_at INTO initiated FROM invoices_invoice WHERE id = target_invoice;
    IF initiated IS NULL THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'invoices_installment' THEN
        -- payment progress (amount_paid_minor, status, paid_at) may change; what is owed may not
        IF (to_jsonb(NEW) - 'amount_paid_minor' - 'status' - 'paid_at')
           = (to_jsonb(OLD) - 'amount_paid_minor' - 'status' - 'paid_at') THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'invoice_immutable: % of invoice % cannot change after payment initiation',
        TG_TABLE_NAME, target_invoice USING ERRCODE = 'P0001';
END $$;

CREATE TRIGGER invoices_lineitem_guard
    BEFORE INSERT OR UPDATE OR DELETE ON invoices_lineitem
    FOR EACH ROW EXECUTE FUNCTION invoices_child_guard();

CREATE TRIGGER invoices_installment_guard
    BEFORE INSERT OR UPDATE OR DELETE ON invoices_installment
    FOR EACH ROW EXECUTE FUNCTION invoices_child_guard();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS invoices_installment_guard ON invoices_installment;
DROP TRIGGER IF EXISTS invoices_lineitem_guard ON invoices_lineitem;
DROP TRIGGER IF EXISTS invoices_invoice_guard ON invoices_invoice;
DROP FUNCTION IF EXISTS invoices_child_guard();
DROP FUNCTION IF EXISTS invoices_invoice_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("invoices", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
