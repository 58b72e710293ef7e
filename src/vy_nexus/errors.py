"""The one exception tree of vy-nexus.

    VyNexusError
    ├── ConfigError                 bad config file, key, type or value: the configuration the process runs with
    ├── TaskError                   a task that cannot be accepted (bad JSON, empty text, ...)
    │   ├── TaskNotFoundError       no task with that id in the task store
    │   └── InputError              an input payload that cannot be read (missing, not UTF-8, bad JSON)
    │       └── PayloadTooLargeError  larger than the limit
    ├── TaskCancelledError          the task was cancelled (by id, or by a shutdown) before it finished
    ├── ExpertError                 carries ``expert_id``
    │   ├── ExpertRegistrationError duplicate id, invalid declaration
    │   ├── UnknownExpertError      no expert with that id
    │   ├── ExpertTimeoutError      an expert ran past its time limit
    │   └── ExpertExecutionError    an expert raised; ``retryable`` says whether to try again
    ├── RoutingError                no expert could be chosen
    ├── GovernanceError             a policy refused the task (carries the verdict, and a ``NextStep`` to word)
    │   ├── ApprovalNotFoundError   no approval request with that id
    │   └── ApprovalNotPendingError the request was decided, used or expired already: it cannot be decided again
    ├── SafetyError                 the kill switch is engaged, or the file system refused a path
    ├── ReasoningError              an LLM backend failed (server down, model missing, timeout)
    ├── StateError                  sovereign_state.json is corrupt or cannot be written
    ├── StoreError                  the task store cannot be opened, read or written
    ├── BrokerError                 the Celery broker (executor.broker_url) cannot be reached
    └── TrainingError               route training cannot run (no torch) or was interrupted (resumable)

Interfaces map these to exit codes (``exit_code``) and HTTP statuses (``http_status``); a task whose experts all
failed for one reason maps through ``FAILURE_ERRORS`` (``ExpertResult.error_kind`` → the error it amounts to).
Messages state the facts; advice that depends on the interface (a command's option, an endpoint's field) travels
as data (``GovernanceError.next_step``) for each interface to word.
"""

from __future__ import annotations

from enum import StrEnum


class VyNexusError(Exception):
    """Root of every error vy-nexus raises on purpose."""

    exit_code: int = 1
    http_status: int = 500

    def __init__(self, message: str, *, task_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.task_id = task_id

    def __str__(self) -> str:
        return self.message


class ConfigError(VyNexusError):
    """The configuration the process runs with is wrong: its config file, a key, an environment variable, a
    command's option, a model or routes file it names. Exit 2. Over HTTP a ``500``: a client cannot fix the
    server's configuration (the server logs what to fix). An interface that hands a client's own value to a parser
    raising ``ConfigError`` (a deadline typed in a form) answers it as the client's error instead."""

    exit_code = 2
    http_status = 500


class TaskError(VyNexusError):
    exit_code = 2
    http_status = 422


class TaskNotFoundError(TaskError):
    http_status = 404


class InputError(TaskError):
    """The task's input payload cannot be read: a missing file, bytes that are not UTF-8 text, broken JSON."""


class PayloadTooLargeError(InputError):
    http_status = 413


class TaskCancelledError(VyNexusError):
    exit_code = 8
    http_status = 409


class ExpertError(VyNexusError):
    def __init__(self, message: str, *, expert_id: str | None = None, task_id: str | None = None) -> None:
        super().__init__(message, task_id=task_id)
        self.expert_id = expert_id


class ExpertRegistrationError(ExpertError):
    exit_code = 2
    http_status = 409


class UnknownExpertError(ExpertError):
    exit_code = 2
    http_status = 404


class ExpertTimeoutError(ExpertError):
    retryable = True


class ExpertExecutionError(ExpertError):
    """An expert failed. Raise it with ``retryable=True`` for transient failures worth another try."""

    def __init__(
        self,
        message: str,
        *,
        expert_id: str | None = None,
        task_id: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message, expert_id=expert_id, task_id=task_id)
        self.retryable = retryable


class RoutingError(VyNexusError):
    http_status = 422


class FallbackExpertMissingError(ConfigError):
    """``routing.fallback_expert`` names no registered expert, and a task needed it: the configuration the process
    runs with is wrong, not the request (exit 2; HTTP 500 with the message)."""


class NextStep(StrEnum):
    """What the person refused by governance can do next. The error's message states the facts; each interface
    words the step in its own terms (the CLI's commands and options, the API's endpoints and fields)."""

    APPROVE_THEN_REPEAT = "approve_then_repeat"
    """A request was filed (``approval_id``): approve it, then repeat the action naming it."""
    APPROVE_FIRST = "approve_first"
    """The request named is still pending: approve it first."""
    REPEAT_WITH_APPROVAL = "repeat_with_approval"
    """The request is approved already: repeat the action naming it to use it."""
    FILE_NEW_REQUEST = "file_new_request"
    """The request cannot be used (used, expired, denied): repeat the action without it to file a new one."""
    FILE_REQUEST_FOR_THIS = "file_request_for_this"
    """The request names another action: repeat this one without it to file a request for it."""
    LIST_APPROVALS = "list_approvals"
    """No request has that id: list every request to find the right one."""


class GovernanceError(VyNexusError):
    """``verdict`` is ``denied``, ``throttled`` or ``needs_approval``; ``policy`` names the policy that decided;
    ``approval_id`` is the approval request concerned, if any; ``next_step`` what the person can do about it
    (worded by each interface, see ``NextStep``)."""

    exit_code = 3
    http_status = 403

    def __init__(
        self,
        message: str,
        *,
        verdict: str = "denied",
        policy: str | None = None,
        approval_id: str | None = None,
        task_id: str | None = None,
        next_step: NextStep | None = None,
    ) -> None:
        super().__init__(message, task_id=task_id)
        self.verdict = verdict
        self.policy = policy
        self.approval_id = approval_id
        self.next_step = next_step
        if verdict == "throttled":
            self.http_status = 429


class ApprovalNotFoundError(GovernanceError):
    """No approval request has that id: a ``404`` over HTTP. The CLI's exit code stays governance's (3)."""

    http_status = 404


class ApprovalNotPendingError(GovernanceError):
    """Deciding a request that is no longer pending (approved, denied, consumed or expired): a ``409`` over HTTP,
    as the request's state conflicts with the decision. The CLI's exit code stays governance's (3)."""

    http_status = 409


class SafetyError(VyNexusError):
    exit_code = 4
    http_status = 503


class ReasoningError(VyNexusError):
    exit_code = 5
    http_status = 502


class StateError(VyNexusError):
    exit_code = 6
    http_status = 500


class StoreError(VyNexusError):
    exit_code = 7
    http_status = 503


class BrokerError(VyNexusError):
    exit_code = 9
    http_status = 503


class TrainingError(VyNexusError):
    """``routes train`` stopped: torch missing, bad data, or Ctrl-C (``interrupted``; the next run resumes)."""

    exit_code = 10

    def __init__(self, message: str, *, interrupted: bool = False) -> None:
        super().__init__(message)
        self.interrupted = interrupted
        if interrupted:
            self.exit_code = 130


FAILURE_ERRORS: dict[str, type[VyNexusError]] = {
    "invalid": TaskError,
    "reasoning": ReasoningError,
    "cancelled": TaskCancelledError,
}
"""The error a task amounts to when every expert failed with this ``error_kind`` (others: ``VyNexusError``)."""


def failure_error(kind: str | None) -> type[VyNexusError]:
    """The error class whose ``exit_code``/``http_status`` describe a task that failed with ``kind``."""
    return FAILURE_ERRORS.get(kind or "", VyNexusError)
