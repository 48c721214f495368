"""The `npuenv` console script: the same tasks as `invoke`, as a program of its own."""

from __future__ import annotations

from invoke import Program

from . import __version__
from .tasks import ns

program = Program(namespace=ns, version=__version__, name="npuenv", binary="npuenv")


def main() -> None:
    program.run()
