"""What the application layer refuses, by kind; the transports decide how a kind looks.

Every use case in :mod:`cofid.service` raises a :class:`ServiceError` for a request it
will not carry out; anything else that escapes is a bug (or the database being gone).
The kinds are a closed set, one per way a caller should react, and ``cofid.api.servicer``
maps each kind to a gRPC status code in one table:

=================  ===================  ==============================================
kind               gRPC code            the caller should
=================  ===================  ==============================================
InvalidRequest     INVALID_ARGUMENT     fix the request (a name, a stage, an id)
NotFound           NOT_FOUND            name something that exists
Conflict           ALREADY_EXISTS       stop: the work is done, queued or running
Precondition       FAILED_PRECONDITION  change the world first (the directory, a task)
Exhausted          RESOURCE_EXHAUSTED   ask for less
=================  ===================  ==============================================

A specific error is a subclass of its kind; one that is also another kind lists the kind
the transport should use first (UnknownQuestionSet is a BatchInputError for the watcher,
an InvalidRequest for StartBatch). The message is the whole answer: the transports pass
it on unchanged.
"""

from __future__ import annotations

from cofid.domain.reaudit import ReauditRequestError as DomainReauditRequestError


class ServiceError(Exception):
    """A request the application layer refuses; ``message`` says why, precisely."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(ServiceError):
    """The request itself is wrong."""


class NotFound(ServiceError):
    """The request names something that does not exist."""


class Conflict(ServiceError):
    """The work asked for exists already (done, queued or running)."""


class Precondition(ServiceError):
    """The request is well-formed but the state of things refuses it."""


class Exhausted(ServiceError):
    """The request asks for more than a limit allows."""


KINDS: tuple[type[ServiceError], ...] = (InvalidRequest, NotFound, Conflict, Precondition,
                                         Exhausted)


def kind_of(error: ServiceError) -> type[ServiceError]:
    """The kind a transport answers `error` with: the first kind in its class's MRO."""
    for cls in type(error).__mro__:
        if cls in KINDS:
            return cls
    raise TypeError(f"{type(error).__name__} is a ServiceError of no kind")


# ---- the specific errors -------------------------------------------------------------


class BatchInputError(Precondition, ValueError):
    """The directory cannot become a batch; the message says why."""


class UnknownQuestionSet(InvalidRequest, BatchInputError):
    """The batch (or upload) asks for an audit question set the configuration lacks."""


class ReauditRequestError(InvalidRequest, DomainReauditRequestError):
    """A Reaudit request the domain's rules refuse (cofid.domain.reaudit rules 8–9)."""


class CallsBusy(Precondition):
    """A reaudit or a batch run names calls another task is working on (one owner per
    call, cofid.service.reservations); the message names each call's holder."""

    def __init__(self, names: list[str], holders: dict[str, str] | None = None) -> None:
        holders = holders or {}
        shown = [f"{n} ({holders[n]})" if n in holders else n for n in sorted(names)[:20]]
        super().__init__(
            "calls are being processed by another task: " + ", ".join(shown)
            + (f" and {len(names) - 20} more" if len(names) > 20 else "")
        )
        self.names = names
        self.holders = holders


class NoMatchingCalls(NotFound):
    """A reaudit whose audio names match no call at all."""


class BatchExists(Conflict):
    """StartBatch on a directory that is a batch already (queued, running or done)."""


class UploadConflict(Conflict):
    """An upload names files being uploaded right now, or uploaded before."""


class TaskNotFound(NotFound):
    """No task has this id."""


class TaskFinished(Precondition):
    """CancelTask on a task that already completed or failed."""


class NotResumable(Precondition):
    """ResumeTask on a task that is not cancelled, or whose batch cannot be resumed."""
