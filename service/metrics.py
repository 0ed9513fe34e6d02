"""Prometheus metrics: request latency, jobs by outcome, per-stage job time, gallery size."""

from prometheus_client import Counter, Gauge, Histogram

REQUEST_SECONDS = Histogram(
    "gaitid_request_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
JOBS_TOTAL = Counter("gaitid_jobs_total", "jobs that ended, by kind and status", ["kind", "status"])
JOB_STAGE_SECONDS = Histogram(
    "gaitid_job_stage_seconds",
    "time jobs spend per pipeline stage",
    ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
JOBS_ACTIVE = Gauge("gaitid_jobs_active", "queued or running jobs")
GALLERY_SIZE = Gauge("gaitid_gallery_sequences", "enrolled sequences in the gallery index", ["model"])
STREAM_EVENTS = Counter("gaitid_stream_events_total", "identification events emitted on streams", ["decision"])
STREAMS_RUNNING = Gauge("gaitid_streams_running", "streams this process is reading now")
