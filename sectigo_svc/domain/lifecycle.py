"""Which request state may follow which: the one table every store enforces on every write.

A request only moves forward: recorded, then at Sectigo, then finished. A write that would move it
back (a stale step writing "batch created" over READY, say) is refused by the store in the same
statement that checks the version, so no interleaving of replicas, pauses or retries can undo a
finished request. Rewriting a state with itself is allowed (notes, send states, new batch status).
"""

from __future__ import annotations

from sectigo_svc.domain.models import RequestState

_S = RequestState

_UNFINISHED = frozenset({_S.PENDING, _S.SUBMITTED, _S.PROCESSING})

#: new state -> the stored states it may replace. SUBMITTED and PROCESSING are one stage (a
#: lookup may find the request's batch under another id, PROCESSING -> SUBMITTED); a finished
#: state follows only an unfinished one or itself; a hold and its release move an issued
#: certificate between READY and ON_HOLD; revocation for good follows either.
MAY_FOLLOW: dict[RequestState, frozenset[RequestState]] = {
    _S.PENDING: frozenset({_S.PENDING}),
    _S.SUBMITTED: _UNFINISHED,
    _S.PROCESSING: _UNFINISHED,
    _S.READY: _UNFINISHED | {_S.READY, _S.ON_HOLD},
    _S.ON_HOLD: frozenset({_S.READY, _S.ON_HOLD}),
    _S.REJECTED: _UNFINISHED | {_S.REJECTED},
    _S.FAILED: _UNFINISHED | {_S.FAILED},
    _S.REVOKED: frozenset({_S.READY, _S.ON_HOLD, _S.REVOKED}),
}


def predecessors(state: RequestState) -> tuple[str, ...]:
    """The stored states (their stored values, sorted) a write of ``state`` may replace."""
    return tuple(sorted(s.value for s in MAY_FOLLOW[state]))


def may_follow(stored: RequestState, new: RequestState) -> bool:
    return stored in MAY_FOLLOW[new]
