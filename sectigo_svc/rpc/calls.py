"""Per-call facts the interceptor establishes and the servicer reads: caller and deadline."""

from __future__ import annotations

import contextvars

from sectigo_svc.domain.service import Caller
from sectigo_svc.sectigo.deadline import Deadline

_caller: contextvars.ContextVar[Caller] = contextvars.ContextVar("caller")
_deadline: contextvars.ContextVar[Deadline] = contextvars.ContextVar("deadline")


def set_call(caller: Caller, deadline: Deadline) -> None:
    _caller.set(caller)
    _deadline.set(deadline)


def caller() -> Caller:
    """The authenticated, authorized caller of the RPC being served on this thread."""
    return _caller.get()


def deadline() -> Deadline:
    """How long upstream work for this RPC may run: the caller's deadline, capped."""
    return _deadline.get()
