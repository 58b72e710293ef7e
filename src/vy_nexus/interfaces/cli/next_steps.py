"""The CLI's words for what a person can do about a governance refusal (``NextStep``): its commands and options.
The API words the same steps as endpoints and fields (``interfaces/api/errors.py``)."""

from __future__ import annotations

from vy_nexus.errors import NextStep, VyNexusError

CLI_STEPS: dict[NextStep, str] = {
    NextStep.APPROVE_THEN_REPEAT: ". Approve it with `vy-nexus approvals approve {id}`, then repeat the command with"
    " --approval {id} (or confirm it yourself with --yes)",
    NextStep.APPROVE_FIRST: ": run `vy-nexus approvals approve {id}` first",
    NextStep.REPEAT_WITH_APPROVAL: ": repeat the command with --approval {id} to use it",
    NextStep.FILE_NEW_REQUEST: "; repeat the command without --approval to file a new request",
    NextStep.FILE_REQUEST_FOR_THIS: "; repeat the command without --approval to file a request for this one",
    NextStep.LIST_APPROVALS: ": `vy-nexus approvals list --all` shows every request",
}
"""Each wording starts with what joins it to the error's facts."""


def worded(exc: VyNexusError) -> str:
    """The error's message, with its next step (if it carries one) in the CLI's words. A governance error raised
    here or relayed by a server (``RemoteError``) carries ``next_step`` and ``approval_id`` alike."""
    step = getattr(exc, "next_step", None)
    if step is None:
        return str(exc)
    return exc.message + CLI_STEPS[step].format(id=getattr(exc, "approval_id", None))
