"""What a launch script needs of this box: how many NPUs it has, and a TCP port nobody listens on."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Optional

from ..errors import ModelError

FIRST_PORT = 6000  # MindSpeed-MM's scripts use 6000; the next free one when that is taken
PORTS = 1000


def device_count(environ: Mapping[str, str]) -> int:
    """The NPUs here, by their device files (/dev/davinciN; NPUENV_DEVICE_GLOB elsewhere)."""
    from ..npu.smoke import npu_devices

    return len(npu_devices(environ))


def npus_for_script(given: Optional[int], environ: Mapping[str, str]) -> int:
    """--devices, else the NPUs this box has; none here and none given is an error (a guess of 8 is how
    jobs die with HCCL error code 7 on smaller boxes)."""
    if given is not None:
        return given
    found = device_count(environ)
    if found == 0:
        raise ModelError("no NPUs here to size the launch script by (no /dev/davinciN)",
                         hint="run it on the training box, or say how many NPUs it has: --devices N")
    return found


def free_port(host: str = "0.0.0.0", first: int = FIRST_PORT, count: int = PORTS) -> int:
    """The first port from `first` that can be bound on `host` (nobody listens there now)."""
    for port in range(first, first + count):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise ModelError(f"no free TCP port in {first}–{first + count - 1}", hint="pass one with --port N")
