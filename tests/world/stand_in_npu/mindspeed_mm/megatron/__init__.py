"""Test stand-in for Megatron-LM's megatron/ as copied into MindSpeed-MM (tests only)."""

STAND_IN = True
