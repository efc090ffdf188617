"""Budgets on compile-time work: beyond them elaboration stops with DLC013 instead of running away."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_repeat: int = 4096
    max_depth: int = 64
    max_nodes: int = 200_000
