"""Defaults shared by the tasks and the library; import-light (`invoke --list` loads it)."""

DEFAULT_SPEC = "mindspeed-mm-internvl2.5"
