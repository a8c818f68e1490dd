"""Background jobs run on procrastinate (PostgreSQL). Tasks live in each app's tasks.py and are autodiscovered.

`app` is procrastinate's Django app: `app.task(...)` declares a task. Workers: `manage.py procrastinate worker`.

One mechanism for durable work, all of it procrastinate's own:
- **Deferring**: `defer_in_transaction(...)` inside the same `transaction.atomic()` as the change that causes the
  job, so a job is never lost and never runs for a rolled-back change. (A plain `task.defer()` is not enough:
  inside `manage.py procrastinate worker` the app's connector is swapped for a psycopg pool of its own, so the job
  would be committed outside the caller's transaction.) A job that works on one row takes the row's id as its
  procrastinate `lock`: procrastinate never runs two jobs with the same lock at once. `defer_each_sql` defers the
  same jobs from inside the caller's own statement (an outbound event's deliveries: one job per row the
  statement inserts), through the SQL function procrastinate's deferral calls.
- **Retrying**: a job that must run again later raises `RetryLater(at)`; tasks declared with
  `retry=RETRY_AS_ASKED` are then retried by procrastinate at that time (the job row goes back to `todo`). Any
  other exception (the database went away while recording an attempt, a bug) is retried with a capped
  exponential backoff, so a row is never left without a job.
- **Dead workers**: every worker heartbeats (settings.JOBS_HEARTBEAT_SECONDS). The periodic task
  `retry_stalled_jobs` (settings.JOBS_STALLED_RETRY_CRON, queue `housekeeping`) asks procrastinate for the jobs
  still `doing` on a worker whose heartbeat is older than settings.JOBS_STALLED_WORKER_SECONDS — a worker killed
  with SIGKILL, or a machine that vanished — and retries them at once. Every task is idempotent (STYLE.md), so a
  job re-run after its worker died changes nothing twice.
- `jobs_withdraw(locks)` is for re-queueing rows by hand (replay, redelivery): it cancels their waiting jobs and
  says which rows have a job running right now.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime
from functools import cache

from django.conf import settings
from procrastinate import exceptions as procrastinate_exceptions
from procrastinate.contrib.django import app
from procrastinate.contrib.django.django_connector import DjangoConnector
from procrastinate.jobs import Job
from procrastinate.manager import JobManager
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from procrastinate.tasks import Task

from paytrust.tracing import TRACE_KWARG, job_trace_context

__all__ = [
    "RETRY_AS_ASKED",
    "HOUSEKEEPING_QUEUE",
    "RetryLater",
    "app",
    "defer_each_params",
    "defer_each_sql",
    "defer_in_transaction",
    "jobs_withdraw",
]

logger = logging.getLogger("paytrust.jobs")

HOUSEKEEPING_QUEUE = "housekeeping"

# A job manager bound to Django's own connection: the job row is written in the caller's transaction, in web
# processes and in workers alike.
_django_jobs = JobManager(DjangoConnector())


def defer_in_transaction(
    task: Task | str,
    *task_kwargs: dict,
    schedule_at: datetime | None = None,
    locks: Iterable[str] | None = None,
) -> list[int]:
    """Defer one job of `task` per kwargs dict on Django's connection (the caller's transaction); the job ids.

    `task` is the task or its registered name (a service defers by name, so it need not import the tasks module
    that imports it). `locks`, one per kwargs dict, are the jobs' procrastinate locks: the id of the row each job
    works on, so two jobs of one row never run at once. Inside a trace, each job also carries its W3C trace
    context as the kwarg `_trace` (paytrust/tracing.py), which the worker's `trace_job` middleware takes out
    again before the task runs: the job's spans join the deferring request's trace."""
    locks = list(locks) if locks is not None else [None] * len(task_kwargs)
    trace_context = job_trace_context()
    if len(locks) != len(task_kwargs):
        raise ValueError("one lock per job")
    jobs = []
    for kwargs, lock in zip(task_kwargs, locks, strict=True):
        options: dict = {"schedule_at": schedule_at} if schedule_at else {}
        if lock is not None:
            options["lock"] = lock
        if isinstance(task, str):
            deferrer = app.configure_task(task, allow_unknown=False, **options)
        else:
            deferrer = task.configure(**options)
        if trace_context:
            kwargs = {**kwargs, TRACE_KWARG: trace_context}
        jobs.append(deferrer.make_new_job(**kwargs))
    return [job.id for job in _django_jobs.batch_defer_jobs(jobs)]


def defer_each_sql(rows: str) -> str:
    """The body of a CTE that defers one job per row of the CTE `rows` (a column `id`, text) inside the caller's
    own statement: the same jobs as `defer_in_transaction(task, *({kwarg: id} ...), locks=[id ...])` — kwargs
    `{kwarg: id}` plus the trace context, lock `id` — through the function procrastinate's `batch_defer_jobs`
    calls (`procrastinate_defer_jobs_v1`), with no round trip of their own. The statement must read the CTE (a
    SELECT CTE runs only if read; it returns the job ids, or no row when `rows` is empty). Parameters:
    `defer_each_params(task, kwarg)`. Only identifiers chosen by the caller are interpolated."""
    return (
        "SELECT procrastinate_defer_jobs_v1(ARRAY(SELECT ROW(%s::varchar, %s::varchar, %s::integer, r.id, NULL, "  # noqa: S608
        f"jsonb_build_object(%s::text, r.id) || %s::jsonb, NULL)::procrastinate_job_to_defer_v1 FROM {rows} r)) "
        f"AS ids WHERE EXISTS (SELECT FROM {rows})"
    )


def defer_each_params(task: str, kwarg: str) -> list:
    """The parameters of `defer_each_sql` for `task` (a registered task's name) and its kwarg name."""
    queue, task_name, priority = _job_template(task)
    trace_context = job_trace_context()
    return [
        queue,
        task_name,
        priority,
        kwarg,
        json.dumps({TRACE_KWARG: trace_context} if trace_context else {}),
    ]


@cache
def _job_template(task: str) -> tuple[str, str, int]:
    """Queue, task name and priority of a job of `task` as procrastinate builds it (`make_new_job`)."""
    job = app.configure_task(task, allow_unknown=False).make_new_job()
    return job.queue, job.task_name, job.priority


def jobs_withdraw(locks: Iterable[str]) -> set[str]:
    """Before re-queueing rows by hand: cancel the waiting (`todo`) jobs holding these locks, in the caller's
    transaction, and return the locks whose job is running (`doing`) — those rows must not get a second job.
    A job of a dead worker counts as running until `retry_stalled_jobs` has put it back to `todo`."""
    from procrastinate.contrib.django.models import ProcrastinateJob

    locks = list(locks)
    if not locks:
        return set()
    live = ProcrastinateJob.objects.filter(lock__in=locks, status__in=["todo", "doing"]).values_list(
        "id", "lock", "status"
    )
    running = set()
    for job_id, lock, status in live:
        # cancel_job_by_id only touches a job still `todo`: one a worker took meanwhile is running.
        if status == "doing" or not _django_jobs.cancel_job_by_id(job_id):
            running.add(lock)
    return running


class RetryLater(Exception):  # noqa: N818 - an instruction to the job runner, not an error
    """Raised by a job (or the service it calls) to be run again at `at`: an attempt failed and the row records
    when the next one is due, or the row is not due yet. Read by `RETRY_AS_ASKED`."""

    traced_as_error = (
        False  # the job's span (paytrust.tracing.trace_job) records the retry time, not an error
    )

    def __init__(self, at: datetime, reason: str = "") -> None:
        super().__init__(f"retry at {at.isoformat()}" + (f": {reason}" if reason else ""))
        self.at = at
        self.reason = reason


# An unexpected exception (not RetryLater) is retried after 5 s, 10 s, 20 s, … up to an hour between tries.
UNEXPECTED_ERROR_FIRST_DELAY = 5
UNEXPECTED_ERROR_MAX_DELAY = 3600


class RetryAsAsked(BaseRetryStrategy):
    """Procrastinate retry strategy: `RetryLater(at)` → retry at `at` (the time the service computed and stored
    on its row: a schedule with jitter, a receiver's Retry-After, …). Anything else escaped the service's own
    error handling (database down, a bug): retry with a capped exponential backoff, without end — the service
    counts its attempts on the row and fails the row when its budget is spent, so this cannot loop on a row."""

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, RetryLater):
            return RetryDecision(retry_at=exception.at)
        if not isinstance(exception, Exception):  # KeyboardInterrupt, SystemExit: not ours to retry
            return None
        delay = min(UNEXPECTED_ERROR_MAX_DELAY, UNEXPECTED_ERROR_FIRST_DELAY * 2 ** min(job.attempts, 20))
        return RetryDecision(retry_in={"seconds": delay})


RETRY_AS_ASKED = RetryAsAsked()


@app.periodic(cron=settings.JOBS_STALLED_RETRY_CRON, periodic_id="jobs.retry_stalled_jobs")
@app.task(name="jobs.retry_stalled_jobs", queue=HOUSEKEEPING_QUEUE, pass_context=True)
async def retry_stalled_jobs(context, timestamp: int) -> int:
    """Retry now every job left `doing` by a worker without a heartbeat for JOBS_STALLED_WORKER_SECONDS (killed,
    or its machine lost), on every queue. Returns how many were retried."""
    manager = context.app.job_manager
    stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=settings.JOBS_STALLED_WORKER_SECONDS)
    retried = 0
    for job in stalled:
        try:
            await manager.retry_job(job)
        except procrastinate_exceptions.ConnectorException:  # another run of this task retried it first
            continue
        retried += 1
        logger.warning(
            "job of a dead worker retried",
            extra={"job": job.id, "task": job.task_name, "queue": job.queue, "worker": job.worker_id},
        )
    return retried
