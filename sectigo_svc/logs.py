"""structlog, configured once at start: JSON lines for machines, console output on a terminal.

A last processor masks any event value under a key that names a secret, as a safety net behind
the rule that secrets are never logged in the first place. Standard-library logging (grpc, urllib3)
goes through the same renderer.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

_SECRET_KEY = re.compile(r"pass(word)?|secret|token|authorization|private_?key|pkcs12", re.I)
MASK = "[redacted]"


def redact_secrets(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Mask values of keys like ``password``, ``access_token`` or ``private_key``."""
    for key in list(event):
        if key != "event" and _SECRET_KEY.search(key):
            event[key] = MASK
    return event


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Set up structlog and bridge stdlib logging; safe to call again (tests, CLIs)."""
    output = stream or sys.stderr
    console = fmt == "console" or (fmt == "auto" and output.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if console
        else structlog.processors.JSONRenderer(sort_keys=True)
    )
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(output)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
