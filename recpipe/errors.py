"""recpipe's own errors: a problem with the user's input or state, reported in one line.

The CLI prints any `RecpipeError` as one line naming the file, field or value and exits with
code 2 (`recpipe --debug ...` shows the traceback); anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class RecpipeError(Exception):
    """Base of every error a user can act on (bad input, missing data, a failed check)."""


class IngestError(RecpipeError, RuntimeError):
    """A file-level problem: the whole ingest stops and nothing is published."""


class NoDataError(RecpipeError, LookupError):
    """A stage found nothing to work on (an empty lake, no published version, too little data)."""


class TrainingDataError(RecpipeError, ValueError):
    """The training window holds too little data to train or evaluate a ranker."""


class ModelLookupError(RecpipeError, LookupError):
    """A registered model, version or alias does not exist."""


class PublishError(RecpipeError, RuntimeError):
    """A new recommendation version failed its checks; the previous version stays current."""


class InputError(RecpipeError, ValueError):
    """A file, column or option value the user gave cannot be used (names which and why)."""


class MissingInputError(RecpipeError, FileNotFoundError):
    """A file or directory the user named does not exist."""


class DataDirBusyError(RecpipeError, RuntimeError):
    """Another run holds the data directory's writer lock (the message names the holder)."""
