"""The InternVL2.5 sizes, as the pinned MindSpeed-MM conversion script's table has them (facts: layer counts,
pipeline size and splits), and which size a config.json describes.

The converted checkpoint is split by this table, so a model config must carry the same splits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ModelError


@dataclass(frozen=True)
class Size:
    name: str
    vit_layers: int
    llm_layers: int
    llm_hidden: int
    llm_arch: str
    pp: int
    vit_split: tuple[int, ...]
    llm_split: tuple[int, ...]


QWEN2, INTERNLM2 = "Qwen2ForCausalLM", "InternLM2ForCausalLM"
SIZES = (
    Size("1B", 24, 24, 896, QWEN2, 1, (24,), (24,)),
    Size("2B", 24, 24, 2048, INTERNLM2, 1, (24,), (24,)),
    Size("4B", 24, 36, 2048, QWEN2, 1, (24,), (36,)),
    Size("8B", 24, 32, 4096, INTERNLM2, 1, (24,), (32,)),
    Size("26B", 45, 48, 6144, INTERNLM2, 1, (45,), (48,)),
    Size("38B", 45, 64, 5120, QWEN2, 1, (45,), (64,)),
    Size("78B", 45, 80, 8192, QWEN2, 16, (11, 12, 12, 10) + (0,) * 12,
         (0, 0, 0, 1, 5, 6, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6)),
)


def _get(config: dict, source: str, *keys: str) -> Any:
    value: Any = config
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            raise ModelError(f"{source}: no {'.'.join(keys)}",
                             hint="is it an InternVL2.5 config.json? fetch the model again: invoke models.fetch NAME")
        value = value[key]
    return value


def size_of(config: dict, source: str) -> Size:
    """The size whose vision and LLM layer counts, LLM width and LLM architecture config.json has."""
    found = (_get(config, source, "vision_config", "num_hidden_layers"), _get(config, source, "llm_config", "num_hidden_layers"),
             _get(config, source, "llm_config", "hidden_size"), (_get(config, source, "llm_config", "architectures") or ["?"])[0])
    for size in SIZES:
        if (size.vit_layers, size.llm_layers, size.llm_hidden, size.llm_arch) == found:
            return size
    raise ModelError(f"{source}: no InternVL2.5 size has {found[0]} vision layers and a {found[3]} of {found[1]} "
                     f"layers × {found[2]}",
                     hint="MindSpeed-MM's conversion script knows " + ", ".join(s.name for s in SIZES)
                          + " (layers vision/LLM: " + ", ".join(f"{s.vit_layers}/{s.llm_layers}" for s in SIZES) + ")")


def model_size(config: dict, source: str) -> str:
    return size_of(config, source).name
