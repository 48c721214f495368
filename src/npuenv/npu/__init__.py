"""Everything about the NPUs themselves: npu-smi parsing (smi), the /proc scan (procs), kill-npu (kill), the
smoke test and its script (smoke, smoke_script), log triage (logtriage) and the CANN/torch_npu table (compat)."""
