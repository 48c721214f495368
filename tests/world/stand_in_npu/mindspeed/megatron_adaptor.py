"""Stand-in for mindspeed.megatron_adaptor (tests only): like the real one, it needs torch_npu and patches megatron."""

import torch_npu  # noqa: F401  (the real adaptor fails here too when torch_npu cannot load)

import megatron.core

megatron.core.PATCHED_BY = "mindspeed stand-in"
