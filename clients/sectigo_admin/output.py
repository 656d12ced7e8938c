"""Where things are printed: data as pretty JSON on stdout, notes and warnings on stderr.

Keeping data alone on stdout lets ``sectigo authorities | jq`` work while warnings, the generated
PKCS#12 password and errors still reach the operator.
"""

from __future__ import annotations

import json
from typing import Any

import click


def emit(data: Any) -> None:
    """Print ``data`` as JSON, 2-space indent, keys in the order given (the documented one)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def say(message: str) -> None:
    """A result that is a sentence rather than data (auth, download, revoke)."""
    click.echo(message)


def note(message: str) -> None:
    """Something the operator must see that is not the command's result."""
    click.echo(f"sectigo: {message}", err=True)


def warn(message: str) -> None:
    click.echo(f"sectigo: warning: {message}", err=True)
