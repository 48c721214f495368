# The stand-in torch_npu's CANN check (tests only; NOT Ascend code), kept once in
# tests/world/stand_in_npu/torch_npu/_cann.py: stand_in_npu's torch_npu imports it, and the stand-in wheel the
# world serves (tests/world/wheels.py) inlines its text into its torch_npu/__init__.py.
#
# The real torch_npu fails at import when CANN is not sourced: its C extension links libhccl.so, which only
# CANN's set_env.sh puts on LD_LIBRARY_PATH. torch_npu then adds a hint to the loader's message; it names
# "the compiler package" when ASCEND_OPP_PATH is set (CANN half there) and "the cann package" otherwise.
# The stand-in looks for a file named libhccl.so in the LD_LIBRARY_PATH folders (it loads nothing).
import os

LIBHCCL_MISSING = "libhccl.so: cannot open shared object file: No such file or directory"


def cann_sourced():
    """True when a folder on LD_LIBRARY_PATH holds libhccl.so, as after `source set_env.sh`."""
    folders = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    return any(os.path.isfile(os.path.join(d, "libhccl.so")) for d in folders)


def require_cann():
    """Raise the real torch_npu's ImportError (same text) unless CANN's libhccl.so can be found."""
    if cann_sourced():
        return
    package = "compiler" if "ASCEND_OPP_PATH" in os.environ else "cann"
    raise ImportError(LIBHCCL_MISSING + ". Please check that the %s package is installed. Please run "
                      "'source set_env.sh' in the CANN installation path." % package)
