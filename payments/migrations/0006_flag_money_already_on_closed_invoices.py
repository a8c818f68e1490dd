"""Payments whose money arrived on a closed invoice before the flag existed are flagged too (found by review), so
finance staff find them (admin filter, dashboard "to refund"): money applied to a void invoice, or to an expired
invoice without any of it going to an installment (paid after the lapse). No event is sent for these old ones.
"""

from django.db import migrations

SQL = """
UPDATE payments_payment p
SET received_on_closed_invoice = true
FROM invoices_paymentapplication a, invoices_invoice i
WHERE a.payment_id = p.id
  AND i.id = a.invoice_id
  AND NOT p.received_on_closed_invoice
  AND a.applied_minor = 0
  AND a.overpaid_minor > 0
  AND i.status IN ('void', 'expired')
"""


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0005_back_office_permissions"),
        ("invoices", "0006_back_office_permissions"),
    ]

    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
