"""The autopilot's error kinds, free of any SDK so the core can catch them without importing one.

Adapters translate every SDK exception into these (``shared/adapters/azure.translate``); the
engine, the rotator and the triggers only ever see these.
"""

from __future__ import annotations


class AzureError(Exception):
    """An Azure call failed. ``transient`` errors are worth retrying later; the others are final."""

    def __init__(self, message: str, *, transient: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


class Gone(AzureError):
    """The resource does not exist (404)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False, status=404)


class Conflict(AzureError):
    """Another operation is in progress on the resource (409)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False, status=409)


class NotConfigured(AzureError):
    """No usable credential or a refused identity: an operator must fix the set-up; retrying cannot."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message, transient=False, status=status)


class TransientFailure(Exception):
    """Some writes failed transiently; raised after the batch so the platform retries the work item."""
