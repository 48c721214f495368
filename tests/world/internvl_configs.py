"""config.json and tokenizer_config.json shaped like the real InternVL2.5 sizes (the real sizes' published facts), for
models.config's tests: only the numbers and names differ between sizes, as on the hub."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Tuple

VIT_300M = {"num_hidden_layers": 24, "hidden_size": 1024, "num_attention_heads": 16, "intermediate_size": 4096,
            "qkv_bias": True, "qk_normalization": False, "norm_type": "layer_norm", "layer_norm_eps": 1e-06}
VIT_6B = {"num_hidden_layers": 45, "hidden_size": 3200, "num_attention_heads": 25, "intermediate_size": 12800,
          "qkv_bias": False, "qk_normalization": True, "norm_type": "rms_norm", "layer_norm_eps": 1e-06}
QWEN = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 151674, "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-06, "bos_token_id": 151643, "eos_token_id": 151645, "pad_token_id": 151643,
        "max_position_embeddings": 32768, "tie_word_embeddings": False}
INTERNLM = {"architectures": ["InternLM2ForCausalLM"], "model_type": "internlm2", "vocab_size": 92553,
            "rope_theta": 1000000, "rms_norm_eps": 1e-05, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2,
            "bias": False, "max_position_embeddings": 32768, "tie_word_embeddings": False}
# size: (vision, llm family, layers, hidden, heads, kv heads, ffn)
SIZES: Dict[str, Tuple[dict, dict, int, int, int, int, int]] = {
    "1B": (VIT_300M, QWEN, 24, 896, 14, 2, 4864),
    "2B": (VIT_300M, INTERNLM, 24, 2048, 16, 8, 8192),
    "4B": (VIT_300M, QWEN, 36, 2048, 16, 2, 11008),
    "8B": (VIT_300M, INTERNLM, 32, 4096, 32, 8, 14336),
    "26B": (VIT_6B, INTERNLM, 48, 6144, 48, 8, 16384),
    "38B": (VIT_6B, QWEN, 64, 5120, 40, 8, 27648),
    "78B": (VIT_6B, QWEN, 80, 8192, 64, 8, 29568),
}
TOKENS = {"Qwen2ForCausalLM": {151643: "<|endoftext|>", 151644: "<|im_start|>", 151645: "<|im_end|>",
                               151665: "<img>", 151666: "</img>", 151667: "<IMG_CONTEXT>"},
          "InternLM2ForCausalLM": {0: "<unk>", 1: "<s>", 2: "</s>", 92542: "<|im_end|>", 92543: "<|im_start|>",
                                   92544: "<img>", 92545: "</img>", 92546: "<IMG_CONTEXT>"}}


def config(size: str) -> dict:
    vision, family, layers, hidden, heads, kv, ffn = SIZES[size]
    llm = dict(family, num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads,
               num_key_value_heads=kv, intermediate_size=ffn)
    return {"architectures": ["InternVLChatModel"], "model_type": "internvl_chat", "downsample_ratio": 0.5,
            "select_layer": -1, "ps_version": "v2", "template": "internvl2_5", "force_image_size": 448,
            "dynamic_image_size": True, "use_thumbnail": True, "min_dynamic_patch": 1, "max_dynamic_patch": 12,
            "torch_dtype": "bfloat16",
            "vision_config": dict(vision, architectures=["InternVisionModel"], image_size=448, patch_size=14),
            "llm_config": llm}


def tokenizer_config(arch: str) -> dict:
    return {"added_tokens_decoder": {str(i): {"content": t, "special": True} for i, t in TOKENS[arch].items()}}


def write_model(folder: Path, size: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = config(size)
    (folder / "config.json").write_text(json.dumps(data, indent=2))
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(data["llm_config"]["architectures"][0])))
    return folder
