"""Invoke entry point (`uv run invoke --list`). The tasks live in npuenv.tasks."""

from npuenv.tasks import ns  # noqa: F401
