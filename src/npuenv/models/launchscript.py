"""MindSpeed-MM's finetune launch script for a size: the shipped 4B or 78B script with the lines that depend
on the model and the box replaced. Each replaced line must be found: a template that changed shape is an
error, never a file half edited."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any, Callable, Optional

from ..errors import ModelError

NPUS_RE = re.compile(r"(?m)^NPUS_PER_NODE=(\d+)\s*$")
SAFE_PATH = re.compile(r"[A-Za-z0-9/._+@:,-]+")


def _assignment(name: str) -> re.Pattern:
    return re.compile(rf"(?m)^{name}=.*$")


def _flag(name: str) -> re.Pattern:
    return re.compile(rf"(?m)^(\s*--{name}) \S+")


def edit_script(text: str, template: Path, f: Any, paths: Any, generated: Any, devices: Optional[int],
                master_port: Optional[int]) -> str:
    if devices is None or master_port is None:
        raise ModelError("a launch script needs the NPU count and a port", hint="pass --devices N (and --port N)")
    for path in (paths.data_json, paths.model_json, paths.converted, paths.save):
        if not SAFE_PATH.fullmatch(str(path)):
            raise ModelError(f"{path}: the launch script uses its paths unquoted (in MM_ARGS), so a space or shell "
                             "character in one breaks the command", hint="keep the files under a plain path "
                             "(letters, digits, / . _ - + @ : ,), e.g. with --out, --save or --persistent")
    q = shlex.quote  # (the paths are plain: quoting is a no-op kept for safety)
    edits: list[tuple[str, re.Pattern, Callable[[re.Match], str], Any, str]] = [
        ("NPUS_PER_NODE", _assignment("NPUS_PER_NODE"), lambda m: f"NPUS_PER_NODE={devices}", devices, "the NPUs on this box"),
        ("MASTER_PORT", _assignment("MASTER_PORT"), lambda m: f"MASTER_PORT={master_port}", master_port, "a free port here"),
        ("WORLD_SIZE", _assignment("WORLD_SIZE"), lambda m: "WORLD_SIZE=$(($NPUS_PER_NODE*$NNODES))",
         "$NPUS_PER_NODE*$NNODES", "NPUS_PER_NODE (the 4B script reads an unset GPUS_PER_NODE)"),
        ("PP", _assignment("PP"), lambda m: f"PP={f.size.pp}", f.size.pp, f"the conversion script's pp for {f.size.name}"),
        ("MM_DATA", _assignment("MM_DATA"), lambda m: f"MM_DATA={q(str(paths.data_json))}", str(paths.data_json), "the generated data file"),
        ("MM_MODEL", _assignment("MM_MODEL"), lambda m: f"MM_MODEL={q(str(paths.model_json))}", str(paths.model_json), "the generated model file"),
        ("LOAD_PATH", _assignment("LOAD_PATH"), lambda m: f"LOAD_PATH={q(str(paths.converted))}", str(paths.converted), "models.convert's checkpoint"),
        ("SAVE_PATH", _assignment("SAVE_PATH"), lambda m: f"SAVE_PATH={q(str(paths.save))}", str(paths.save), "--save"),
        ("--vocab-size", _flag("vocab-size"), lambda m: f"{m.group(1)} {f.llm['vocab_size']}", f.llm["vocab_size"],
         "config.json llm_config.vocab_size"),
        ("--rotary-base", _flag("rotary-base"), lambda m: f"{m.group(1)} {int(f.llm['rope_theta'])}", int(f.llm["rope_theta"]),
         "config.json llm_config.rope_theta"),
    ]
    for name, pattern, replace, value, source in edits:
        text, count = pattern.subn(replace, text, count=1)
        if count != 1:
            raise ModelError(f"{template}: no `{name}` line to set, as MindSpeed-MM's launch script has",
                             hint="the workspace's MindSpeed-MM must be the pinned one (invoke bootstrap)")
        generated.derived[name] = {"value": value, "from": source}
    generated.from_template = ["every other line"]
    return _header(generated, paths) + _after_shebang(text)


def _after_shebang(text: str) -> str:
    return text.split("\n", 1)[1] if text.startswith("#!") else text


def _header(generated: Any, paths: Any) -> str:
    lines = ["#!/bin/bash", f"# Written by `invoke models.config --kind finetune` from MindSpeed-MM's {generated.template}.",
             "# Run it from the MindSpeed-MM checkout (it reads ./mindspeed_mm/... and pretrain_internvl.py).",
             "# Derived (everything else is the template's):"]
    lines += [f"#   {name} = {entry['value']}  <- {entry['from']}" for name, entry in generated.derived.items()]
    return "\n".join(lines) + "\n"


def launch_devices(text: str) -> Optional[int]:
    """NPUS_PER_NODE as a launch script sets it, or None."""
    found = NPUS_RE.search(text)
    return int(found.group(1)) if found else None
