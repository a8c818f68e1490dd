"""Risk scoring before every charge (issue 15, SPEC §13): per merchant and mode settings, velocity counters and
block lists, evaluated by payments' initiation before any gateway call. Layer: above invoices, below payments."""
