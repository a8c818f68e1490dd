"""Background jobs run on procrastinate (PostgreSQL). Tasks live in each app's tasks.py and are autodiscovered.

`app` is procrastinate's Django app: `app.task(...)` declares a task. Defer jobs with `defer_in_transaction(...)`
inside the same `transaction.atomic()` as the change that causes them, so a job is never lost and never runs for
a rolled-back change. (A plain `task.defer()` is not enough: inside `manage.py procrastinate worker` the app's
connector is swapped for a psycopg pool of its own, so the job would be committed outside the caller's
transaction.) Workers: `manage.py procrastinate worker`.
"""

from __future__ import annotations

from procrastinate.contrib.django import app
from procrastinate.contrib.django.django_connector import DjangoConnector
from procrastinate.manager import JobManager

__all__ = ["app", "defer_in_transaction"]

# A job manager bound to Django's own connection: the job row is written in the caller's transaction, in web
# processes and in workers alike.
_django_jobs = JobManager(DjangoConnector())


def defer_in_transaction(task, *task_kwargs: dict, schedule_at=None) -> list[int]:
    """Defer one job of `task` per kwargs dict on Django's connection (the caller's transaction); the job ids."""
    deferrer = task.configure(schedule_at=schedule_at) if schedule_at else task.configure()
    jobs = _django_jobs.batch_defer_jobs([deferrer.make_new_job(**kwargs) for kwargs in task_kwargs])
    return [job.id for job in jobs]
