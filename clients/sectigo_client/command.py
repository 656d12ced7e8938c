"""The ``sectigo-ca`` entry point: the command when click is installed, else how to get it.

The library needs no click; the command does, and the client distribution installs it only with
its ``cli`` extra. Without it, ``sectigo-ca`` prints the install line to stderr and exits with 2.
"""

from __future__ import annotations

import importlib.util
import sys

INSTALL_HINT = (
    "sectigo-ca needs click, which the sectigo-ca-client package installs only with its "
    "command-line extra: pip install 'sectigo-ca-client[cli]'"
)
EXIT_MISSING_EXTRA = 2


def main() -> None:
    """Run ``sectigo-ca``; exit 2 with :data:`INSTALL_HINT` when click is not installed."""
    if importlib.util.find_spec("click") is None:
        print(f"error: {INSTALL_HINT}", file=sys.stderr)
        sys.exit(EXIT_MISSING_EXTRA)
    from sectigo_client.cli import main as command  # noqa: PLC0415  # needs click

    command()
