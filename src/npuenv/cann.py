"""CANN's set_env.sh: where it is, and how a command runs in the target env with it sourced.

`import torch_npu` needs CANN's libraries (libhccl.so) on the library path, which only sourcing
set_env.sh gives. So everything npuenv runs with the target interpreter — a build's check, doctor's
import probe, the smoke test, the builds — goes through `sourced()`, whether or not the caller's shell
sourced it. Where there is no CANN (a build box), the command runs as it is, and whoever needs CANN says
what it could not verify.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional

TOOLKIT = "/usr/local/Ascend/ascend-toolkit"  # where CANN's installer puts the toolkit
TOOLKIT_VARIABLE = "NPUENV_CANN_ROOT"  # another toolkit folder (doctor reads its version files there)
SET_ENV = f"{TOOLKIT}/set_env.sh"
SET_ENV_VARIABLE = "NPUENV_CANN_SET_ENV"  # another set_env.sh (user init.sh honours it too)
NOT_VERIFIED = "not verified here: no CANN"

# set_env.sh is sourced with no arguments of its own (as a user would), its chatter kept off stdout
SOURCE_AND_EXEC = ('set_env=$1; shift; argv=("$@"); set --; '
                   '. "$set_env" >&2 || echo "npuenv: sourcing $set_env exited with $?" >&2; '
                   'exec "${argv[@]}"')


def set_env_candidate(env: Mapping[str, str]) -> Path:
    """$NPUENV_CANN_SET_ENV, else the toolkit's default set_env.sh (which may not exist)."""
    return Path(env.get(SET_ENV_VARIABLE) or SET_ENV)


def sourced(argv: Sequence[str], set_env: Optional[Path], label: str = "npuenv") -> list[str]:
    """`argv` run by bash after sourcing `set_env` (argument lists throughout); `argv` itself when None."""
    argv = [os.fspath(a) for a in argv]
    if set_env is None:
        return argv
    return ["bash", "-c", SOURCE_AND_EXEC, label, os.fspath(set_env), *argv]
