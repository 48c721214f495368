"""Stand-in megatron.core (tests only). Like Megatron-LM core_r0.8.0, megatron/ itself has no __init__.py:
`megatron` is a namespace package and megatron.core the first regular package."""

STAND_IN = True
