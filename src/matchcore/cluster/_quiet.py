"""A worker plugin that keeps Dask's "Compute Failed" log record of a failed task off stderr.

Installed by :func:`matchcore.cluster.dask.replay_files` on the LocalCluster it starts itself:
the exception of a failed task is raised in the caller (and the command prints it as one error
line), so each worker's record of it, a block of about seven lines with the task's traceback,
only repeated it. So is a worker's "Failed to communicate with scheduler during heartbeat"
record: this cluster's scheduler runs in the caller's process, so a heartbeat fails only as
the caller closes the cluster (the scheduler's comms closed first, a heartbeat in flight), and
on a loaded machine its traceback came after the command's one error line. So is the
"Async instruction for <Task cancelled ...> ended with CancelledError" warning of the workers'
state machine, which Dask logs only as a worker closes with a task running: a failed task's
other files still replaying (or a Ctrl-C) had one such line per running task, naming Dask's
task keys, before the command's own line. Every other record of the workers (warnings about
memory, a slow start, a lost worker, ...) is kept. Imports ``distributed``: imported only
where Dask is in use.
"""
from __future__ import annotations

import logging

from distributed.diagnostics.plugin import WorkerPlugin

# {logger: the (start, end) of each message dropped from it}; a filter added to a logger sees
# only the records logged to it, not those of the loggers below it
_DROPPED = {
    "distributed.worker": (("Compute Failed", ""),
                           ("Failed to communicate with scheduler during heartbeat", "")),
    "distributed.worker.state_machine": (("Async instruction for ",
                                          "ended with CancelledError"),),
}


class _TaskFailureFilter(logging.Filter):
    """Drops the workers' "Compute Failed", heartbeat-failure and closing-cancellation
    records, passes every other one."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        return not (isinstance(msg, str) and any(
            msg.startswith(start) and msg.endswith(end)
            for start, end in _DROPPED.get(record.name, ())))


class QuietTaskFailures(WorkerPlugin):
    """Adds the filter to each worker's logger (workers started later too), and removes it when
    the worker closes (a worker thread shares its logger with the caller's process)."""

    name = "matchcore-quiet-task-failures"
    idempotent = True

    def setup(self, worker):
        self._filter = _TaskFailureFilter()
        for name in _DROPPED:
            logging.getLogger(name).addFilter(self._filter)

    def teardown(self, worker):
        f = getattr(self, "_filter", None)
        if f is not None:
            for name in _DROPPED:
                logging.getLogger(name).removeFilter(f)
