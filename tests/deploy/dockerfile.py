"""A small Dockerfile reader for the tests: stages, instructions, ENV, in build order."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for arg in self.all("ENV"):
            for item in shlex.split(arg):
                key, _, value = item.partition("=")
                values[key] = value
        return values

    def exec_form(self, keyword: str) -> list[str]:
        """The JSON (exec) form of the last CMD/ENTRYPOINT/HEALTHCHECK CMD of this stage."""
        arg = self.all(keyword)[-1]
        if keyword == "HEALTHCHECK":
            arg = arg[arg.index("CMD") + 3 :]
        parsed: list[str] = json.loads(arg.strip())
        return parsed


def parse(path: Path) -> list[Stage]:
    """Stages in order; a stage inherits nothing here (callers follow ``base`` if they need to)."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    stages: list[Stage] = []
    args: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
            continue
        if keyword == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), parts[0])
            name = parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else ""
            stages.append(Stage(name, base))
            continue
        stages[-1].instructions.append((keyword, rest.strip()))
    return stages
