"""Offline, local-first terminal assistant: the core (no UI)."""

__version__ = "0.1.0"
