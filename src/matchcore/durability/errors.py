"""The exceptions of matchcore.durability: every reader raises only these on bad input."""
from __future__ import annotations


class DurabilityError(Exception):
    """Base of the durability errors. ``path`` and ``offset`` name the file and byte offset
    when the error is about damaged data (None when not applicable)."""

    def __init__(self, message: str, segment: str | None = None, offset: int | None = None):
        super().__init__(message)
        self.segment = segment
        self.offset = offset

    @property
    def path(self):
        return self.segment


class JournalError(DurabilityError):
    """A journal cannot be written (I/O failure: the engine refuses further commands) or read
    (damage that is not a torn tail: corruption followed by valid data, a sequence gap, a bad
    segment header), or replay diverged from the recorded outcomes."""


class SnapshotFileError(DurabilityError):
    """An engine snapshot file is damaged, truncated, of another version, or inconsistent."""

