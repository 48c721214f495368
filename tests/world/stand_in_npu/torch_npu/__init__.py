"""Test stand-in for torch_npu, made by npuenv's tests. NOT Ascend's torch_npu: there is no NPU here.

Runs on the real (CPU) torch. The number of stand-in NPUs is $NPUENV_STANDIN_NPUS (default 1; 0 means
`is_available()` is False). `Tensor.npu(i)` returns a CPU copy, so every "device" result is computed by
the CPU. The distributed backend "hccl" is registered as gloo, the way the real torch_npu registers its
ProcessGroupHCCL, so torchrun + init_process_group("hccl") really all-reduce across processes.
With $NPUENV_STANDIN_NEEDS_CANN=1 the import fails like the real one when CANN is not sourced (the real
text, UPSTREAM.md) unless libhccl.so is on LD_LIBRARY_PATH, which CANN's set_env.sh (tests/world/cann.py)
puts there. The check is _cann.py, the same one the world's stand-in torch_npu wheel always runs; here it
is opt-in because the smoke tests run this stand-in on the real torch without any CANN.
"""

import os

from ._cann import require_cann

STAND_IN = True
__version__ = "2.1.0.post8"

if os.environ.get("NPUENV_STANDIN_NEEDS_CANN") == "1":
    require_cann()

import torch  # noqa: E402  (after the CANN check: the real import fails before torch_npu is usable)
import torch.distributed as _dist  # noqa: E402

from . import npu  # noqa: E402


def _tensor_npu(self, device=None, non_blocking=False, **kwargs):
    npu._index(device)  # an invalid device fails as on a real NPU
    return self.clone()


torch.Tensor.npu = _tensor_npu
torch.npu = npu


def _hccl_as_gloo(store, rank, size, timeout):
    return _dist.ProcessGroupGloo(store, rank, size, timeout)


if "hccl" not in _dist.Backend.backend_list:
    _dist.Backend.register_backend("hccl", _hccl_as_gloo, devices=["cpu"])
