"""The `npuenv` console script: the same tasks as `invoke`, as a program of its own."""

from __future__ import annotations

import os
import sys

from invoke import Program

from . import __version__
from .tasks import ns

program = Program(namespace=ns, version=__version__, name="npuenv", binary="npuenv")


def main() -> None:
    try:
        program.run()
    except BrokenPipeError:  # `npuenv --list | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
