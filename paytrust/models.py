"""Abstract model bases shared by every app."""

from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Mode(models.TextChoices):
    TEST = "test", "Test"
    LIVE = "live", "Live"
