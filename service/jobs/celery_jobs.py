"""Scale-out jobs: the API sends job ids to Celery on Redis; GPU workers run them.

Workers load the gait model and the gallery once per process, take one job at a time
(prefetch 1), and acknowledge a job only when it has ended (``acks_late``), so a worker killed
mid-job leaves the message to be delivered again (after ``GAITID_JOB_REDELIVERY_SECONDS``) to
another worker. The job row's heartbeat lease makes a redelivered job run once at a time, and
the one-sequence-per-job constraint makes it enroll once. Database hiccups are retried.

A job the broker cannot take (Redis down) is refused with 503 ``queue_unavailable`` and taken
back (:func:`service.api.submit.submit_job`); the API keeps no connection state that a Redis
restart breaks, so the next job is sent as soon as Redis is back, without restarting anything.
"""

import logging

from celery import Celery, signals
from kombu.exceptions import KombuError
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError

from service.context import ServiceContext
from service.errors import UnavailableError
from service.jobs.store import recover
from service.jobs.work import process_job
from service.settings import Settings, load_settings
from service.streams.services import StreamServices

log = logging.getLogger(__name__)
TASK_NAME = "gaitid.process_job"


def make_celery(settings: Settings) -> Celery:
    app = Celery("gaitid", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.celery_queue,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        broker_transport_options={
            "visibility_timeout": settings.job_redelivery_seconds,
            # look for abandoned jobs often enough that the redelivery time holds
            "unacked_restore_interval": max(1, min(10, settings.job_redelivery_seconds // 5)),
            "unacked_restore_throttle": 1,
        },
    )
    return app


settings = load_settings()
celery_app = make_celery(settings)
_context: ServiceContext | None = None


_streams: StreamServices | None = None


@signals.worker_process_init.connect
def _load_models(**_: object) -> None:
    """Each worker process loads the model and the gallery once, before its first job, and takes its
    share of the live streams (each stream is read by one process: a database lease decides which)."""
    global _context, _streams
    _context = ServiceContext.create(settings)
    _context.load()
    if settings.streams and _streams is None:
        _streams = StreamServices(_context)
        _streams.start()


@signals.worker_process_shutdown.connect
def _release_streams(**_: object) -> None:
    """Hand the streams back on a clean shutdown, so another worker takes them over at once."""
    if _streams is not None:
        _streams.stop()


@celery_app.task(
    name=TASK_NAME, autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=60, max_retries=10
)
def run_job(job_id: str) -> None:
    if _context is None:
        _load_models()
    assert _context is not None
    process_job(_context, job_id)


class CeleryQueue:
    """What the API submits jobs to when ``GAITID_JOBS=celery``."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def start(self) -> None:
        """Send again the queued jobs whose message a crash may have lost (a duplicate runs once)."""
        for job_id in recover(self.ctx.sessions, self.ctx.settings.job_max_attempts, statuses=("queued",)):
            self.submit(job_id)

    def submit(self, job_id: str) -> None:
        """Send the job to the workers; :class:`UnavailableError` when the broker cannot be reached
        (after Celery's few quick publish retries)."""
        try:
            run_job.apply_async((job_id,), queue=self.ctx.settings.celery_queue)
        except (KombuError, RedisError, OSError) as error:
            log.warning("job %s not sent: the broker is unreachable (%s)", job_id, error)
            raise UnavailableError("the job queue is unreachable; retry shortly", code="queue_unavailable") from None

    def stop(self) -> None:
        """Nothing to stop: the workers are other processes."""
