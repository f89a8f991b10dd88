"""Utility task (being built)."""
TASKS: dict = {}
