"""What the client reports as it works, for whoever counts (metrics); it knows nothing of them."""

from __future__ import annotations

from typing import Protocol


class Observer(Protocol):
    def sectigo_call(
        self, endpoint: str, status: int | None, attempt: int, seconds: float, error: str | None
    ) -> None:
        """One HTTP attempt finished (``status`` None when no answer came)."""
        ...

    def tokens_renewed(self, how: str) -> None:
        """New tokens were obtained; ``how`` is ``login`` or ``refresh``."""
        ...


class NoObserver:
    """The default: nobody is counting."""

    def sectigo_call(
        self, endpoint: str, status: int | None, attempt: int, seconds: float, error: str | None
    ) -> None:
        return

    def tokens_renewed(self, how: str) -> None:
        return
