"""Background jobs of this app (procrastinate autodiscovers tasks.py)."""
