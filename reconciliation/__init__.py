"""Reconciliation (issue 15, SPEC §13): a gateway account's UTC day, PayTrust's succeeded payments and refunds
against the gateway's own records (its list API or an uploaded settlement file). Layer: above webhooks.inbound,
below reporting."""
