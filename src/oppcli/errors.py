"""The error tree and the exit-code table: one place maps every failure to its code."""

from __future__ import annotations

from typing import Any

# The exit codes, documented in the README. Scripts depend on these numbers.
OK = 0
UNEXPECTED = 1
USAGE = 2
CONFIG = 3
NOT_FOUND = 4
SERVICE = 5
CONFLICT = 6
PARTIAL = 7
INTERRUPTED = 130
OUTPUT_CLOSED = 141  # as a process killed by SIGPIPE
TERMINATED = 143  # SIGTERM


class OppcliError(Exception):
    """Base of every error oppcli reports to the user as one line with an exit code."""

    prefix = "error: "  # how the entry point introduces the message

    exit_code = UNEXPECTED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}; {self.hint}"
        return self.message


class UsageError(OppcliError):
    """A bad flag, a bad value, a refused non-interactive operation (exit 2)."""

    exit_code = USAGE


class ValidationError(UsageError):
    """A value that fails the field rules (exit 2)."""


class ConfigError(OppcliError):
    """Missing or unreadable configuration or store, bad credentials (exit 3)."""

    exit_code = CONFIG


class StoreError(ConfigError):
    """The local store is missing, corrupt, newer than we understand, or unreadable (exit 3)."""


class NotFoundError(OppcliError):
    """An unknown id, or a name that matches nothing (exit 4)."""

    exit_code = NOT_FOUND


class ServiceError(OppcliError):
    """The service kept failing or rate-limited us after retries; the store is locked (exit 5)."""

    exit_code = SERVICE


class UncertainWrite(ServiceError):
    """A write whose answer was lost after it may have reached the service (exit 5): it was
    not retried, since that could make it twice."""


class ConflictError(OppcliError):
    """An ambiguous name, or a remote validation failure (exit 6)."""

    exit_code = CONFLICT


class PartialFailure(OppcliError):
    """Some items of a bulk operation failed (exit 7); `done` holds what succeeded."""

    exit_code = PARTIAL

    def __init__(self, message: str, hint: str | None = None,
                 done: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, hint)
        self.done = done or []


class OutputClosed(OppcliError):
    """The reader of stdout (or stderr) went away before a write or an export finished (exit
    141, as a process killed by SIGPIPE): what was not done is kept, the export state is not
    advanced."""

    exit_code = OUTPUT_CLOSED


class Declined(UsageError):
    """A person answered no to a confirmation (exit 2): nothing was changed. Reported as its
    message alone ("nothing deleted"), not as an error."""

    prefix = ""


def ends_the_run(exc: BaseException) -> bool:
    """An error that ends a run of many writes rather than one of them: the service failing
    after its retries, or the credentials or storage refused. Any other error (a 422, a deal
    gone) belongs to one row or deal, and the others go on."""
    return isinstance(exc, (ServiceError, ConfigError))
