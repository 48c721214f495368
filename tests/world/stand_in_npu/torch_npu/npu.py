"""Stand-in torch_npu.npu (tests only): the device count comes from $NPUENV_STANDIN_NPUS."""

import os

_current = [0]


def device_count():
    return int(os.environ.get("NPUENV_STANDIN_NPUS", "1"))


def is_available():
    return device_count() > 0


def _index(device):
    """The device number of None, 3, "npu:3" or a torch.device, checked like the real one."""
    if device is None:
        index = _current[0]
    elif isinstance(device, int):
        index = device
    else:
        index = getattr(device, "index", None)
        if index is None:
            text = str(device)
            index = int(text.split(":", 1)[1]) if ":" in text else _current[0]
    if not 0 <= index < device_count():
        raise RuntimeError(f"Invalid device ID {index}: the stand-in has {device_count()} NPU(s)")
    return index


def set_device(device):
    _current[0] = _index(device)


def current_device():
    return _current[0]


def synchronize(device=None):
    return None
