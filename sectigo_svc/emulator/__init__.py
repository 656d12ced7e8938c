"""A faithful, strict emulator of the Sectigo IoT Manager API.

It is a second, independent implementation: it imports nothing from the rest of ``sectigo_svc``,
so that the client and the emulator cannot share a misreading of the API. See ``docs/emulator.md``.
"""

from sectigo_svc.emulator.config import EmulatorConfig
from sectigo_svc.emulator.faults import FaultRule
from sectigo_svc.emulator.server import Emulator

__all__ = ["Emulator", "EmulatorConfig", "FaultRule"]
