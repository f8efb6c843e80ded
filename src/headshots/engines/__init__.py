"""Engines turn a prepared selfie and a style into headshots."""

from headshots.engines.base import (
    Engine,
    EngineFailure,
    Failed,
    Outcome,
    Rendered,
    available_engines,
    get_engine,
    register_engine,
)

__all__ = [
    "Engine",
    "EngineFailure",
    "Failed",
    "Outcome",
    "Rendered",
    "available_engines",
    "get_engine",
    "register_engine",
]
