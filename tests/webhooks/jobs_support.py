"""Looking at and staging procrastinate jobs in tests (its tables, through its read-only models or plain SQL)."""

from __future__ import annotations

from django.db import connection
from procrastinate.contrib.django.models import ProcrastinateJob


def job_of(lock: str) -> dict | None:
    """The newest procrastinate job holding `lock` (a row id): its id, status, attempts (finished runs), task."""
    return (
        ProcrastinateJob.objects.filter(lock=lock)
        .order_by("-id")
        .values("id", "status", "attempts", "scheduled_at", "task_name")
        .first()
    )


def jobs_of(lock: str) -> list[str]:
    """The statuses of every job that held `lock`, oldest first."""
    return list(ProcrastinateJob.objects.filter(lock=lock).order_by("id").values_list("status", flat=True))


def job_taken_by_dead_worker(lock: str) -> int:
    """The waiting job holding `lock` is taken (`doing`) by a worker that then died: its heartbeat is an hour old,
    as after a SIGKILL. Returns the job id."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour') RETURNING id"
        )
        worker_id = cursor.fetchone()[0]
        cursor.execute(
            "UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s "
            "WHERE lock = %s AND status = 'todo' RETURNING id",
            [worker_id, lock],
        )
        (job_id,) = cursor.fetchone()
    return job_id
