"""Background jobs run on procrastinate (PostgreSQL). Tasks live in each app's tasks.py and are autodiscovered.

`app` is procrastinate's Django app: `app.task(...)` to declare, `task.defer(...)` inside the same
`transaction.atomic()` as the change that causes the job, so a job is never lost and never runs for a rolled-back
change. Workers: `manage.py procrastinate worker`.
"""

from procrastinate.contrib.django import app

__all__ = ["app"]
