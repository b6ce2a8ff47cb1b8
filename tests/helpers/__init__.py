"""Helpers shared by test modules (on pytest's path: `pythonpath` in pyproject.toml)."""
