"""Django's PostgreSQL backend with a cheaper pool check (`base.py`); ENGINE = "paytrust.postgresql"."""
