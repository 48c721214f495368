"""Stand-in megatron.core (tests only)."""
