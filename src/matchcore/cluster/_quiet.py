"""A worker plugin that keeps Dask's "Compute Failed" log record of a failed task off stderr.

Installed by :func:`matchcore.cluster.dask.replay_files` on the LocalCluster it starts itself:
the exception of a failed task is raised in the caller (and the command prints it as one error
line), so each worker's record of it, a block of about seven lines with the task's traceback,
only repeated it. So is a worker's "Failed to communicate with scheduler during heartbeat"
record: this cluster's scheduler runs in the caller's process, so a heartbeat fails only as
the caller closes the cluster (the scheduler's comms closed first, a heartbeat in flight), and
on a loaded machine its traceback came after the command's one error line. Every other record
of the workers (warnings about memory, a slow start, a lost worker, ...) is kept. Imports
``distributed``: imported only where Dask is in use.
"""
from __future__ import annotations

import logging

from distributed.diagnostics.plugin import WorkerPlugin

_LOGGER = "distributed.worker"


_DROPPED = ("Compute Failed", "Failed to communicate with scheduler during heartbeat")


class _TaskFailureFilter(logging.Filter):
    """Drops the worker's "Compute Failed" and heartbeat-failure records, passes every other
    one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(_DROPPED))


class QuietTaskFailures(WorkerPlugin):
    """Adds the filter to each worker's logger (workers started later too), and removes it when
    the worker closes (a worker thread shares its logger with the caller's process)."""

    name = "matchcore-quiet-task-failures"
    idempotent = True

    def setup(self, worker):
        self._filter = _TaskFailureFilter()
        logging.getLogger(_LOGGER).addFilter(self._filter)

    def teardown(self, worker):
        f = getattr(self, "_filter", None)
        if f is not None:
            logging.getLogger(_LOGGER).removeFilter(f)
