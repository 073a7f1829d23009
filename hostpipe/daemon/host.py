"""The real host as the core's rules see it."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class RealHost:
    home: str

    def realpath(self, path: str) -> str:
        return os.path.realpath(os.path.join(self.home, os.path.expanduser(path)))
