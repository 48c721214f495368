"""A tiny model shaped like OpenGVLab/InternVL2_5-2B, for the world's hub.

Its config.json carries the real 2B's *shape numbers* (vision 24 layers / 1024 hidden / 16 heads / 4096 FFN,
qkv bias, LayerNorm; InternLM2 LLM 24 layers / 2048 hidden / 16 heads / 8 KV heads / 8192 FFN, vocabulary
92553, rope theta 1e6), so whatever reads sizes from it sees a 2B; its tensors are tiny (a few bytes each,
with the real names: vision_model.…, mlp1.…, language_model.model.tok_embeddings / layers.N.attention.wqkv /
…, language_model.output), except one bulk tensor that makes the shards large enough to cut mid-file. The
tokenizer_config.json has InternLM2's added tokens (<img> 92544, </img> 92545, <IMG_CONTEXT> 92546,
<|im_end|> 92542, …); tokenizer.model is a stand-in of a few bytes, not a sentencepiece model. Two
safetensors shards in the real format (8-byte little-endian header length, JSON header, raw bytes) and a
model.safetensors.index.json whose total_size is the tensors' byte count, as the real index's is.
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Dict, List, Tuple

VISION = {"architectures": ["InternVisionModel"], "model_type": "intern_vit_6b", "num_hidden_layers": 24,
          "hidden_size": 1024, "num_attention_heads": 16, "intermediate_size": 4096, "qkv_bias": True,
          "qk_normalization": False, "norm_type": "layer_norm", "layer_norm_eps": 1e-06, "image_size": 448,
          "patch_size": 14, "hidden_act": "gelu", "drop_path_rate": 0.0, "use_flash_attn": True}
LLM = {"architectures": ["InternLM2ForCausalLM"], "model_type": "internlm2", "num_hidden_layers": 24,
       "hidden_size": 2048, "num_attention_heads": 16, "num_key_value_heads": 8, "intermediate_size": 8192,
       "vocab_size": 92553, "rope_theta": 1000000, "rope_scaling": {"type": "dynamic", "factor": 2.0},
       "max_position_embeddings": 32768, "rms_norm_eps": 1e-05, "bias": False, "bos_token_id": 1,
       "eos_token_id": 2, "pad_token_id": 2, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
ADDED_TOKENS = {0: "<unk>", 1: "<s>", 2: "</s>", 92538: "<|plugin|>", 92539: "<|interpreter|>",
                92540: "<|action_end|>", 92541: "<|action_start|>", 92542: "<|im_end|>", 92543: "<|im_start|>",
                92544: "<img>", 92545: "</img>", 92546: "<IMG_CONTEXT>", 92547: "<quad>", 92548: "</quad>",
                92549: "<ref>", 92550: "</ref>", 92551: "<box>", 92552: "</box>"}


def config() -> dict:
    return {"architectures": ["InternVLChatModel"], "model_type": "internvl_chat",
            "auto_map": {"AutoConfig": "configuration_internvl_chat.InternVLChatConfig",
                         "AutoModel": "modeling_internvl_chat.InternVLChatModel",
                         "AutoModelForCausalLM": "modeling_internvl_chat.InternVLChatModel"},
            "downsample_ratio": 0.5, "select_layer": -1, "ps_version": "v2", "template": "internvl2_5",
            "force_image_size": 448, "dynamic_image_size": True, "use_thumbnail": True, "min_dynamic_patch": 1,
            "max_dynamic_patch": 12, "torch_dtype": "bfloat16", "use_backbone_lora": 0, "use_llm_lora": 0,
            "vision_config": dict(VISION), "llm_config": dict(LLM)}


def tokenizer_config() -> dict:
    return {"tokenizer_class": "InternLM2Tokenizer", "auto_map": {"AutoTokenizer": ["tokenization_internlm2.InternLM2Tokenizer", None]},
            "bos_token": "<s>", "eos_token": "</s>", "pad_token": "</s>", "unk_token": "<unk>", "model_max_length": 8192,
            "added_tokens_decoder": {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                              "single_word": False, "special": True} for i, t in ADDED_TOKENS.items()}}


def _bytes(name: str, size: int) -> bytes:
    """Deterministic bytes for a tensor."""
    seed = hashlib.sha256(name.encode()).digest()
    block = b"".join(hashlib.sha256(seed + bytes([i])).digest() for i in range(128))  # 4 KiB
    return (block * (size // len(block) + 1))[:size]


def tensor_names() -> List[str]:
    names = ["vision_model.embeddings.class_embedding", "vision_model.embeddings.patch_embedding.weight"]
    for layer in range(VISION["num_hidden_layers"]):
        names += [f"vision_model.encoder.layers.{layer}.attn.qkv.weight", f"vision_model.encoder.layers.{layer}.mlp.fc1.weight"]
    names += ["mlp1.0.weight", "mlp1.1.weight", "mlp1.3.weight", "language_model.model.tok_embeddings.weight"]
    for layer in range(LLM["num_hidden_layers"]):
        names += [f"language_model.model.layers.{layer}.attention.wqkv.weight",
                  f"language_model.model.layers.{layer}.feed_forward.w1.weight"]
    return names + ["language_model.model.norm.weight", "language_model.output.weight"]


def safetensors(tensors: Dict[str, bytes]) -> bytes:
    header: Dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, data in tensors.items():
        header[name] = {"dtype": "BF16", "shape": [len(data) // 2], "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the real writer pads the header to 8 bytes
    return struct.pack("<Q", len(raw)) + raw + b"".join(tensors.values())


def shards(shard_bytes: int) -> Tuple[Dict[str, bytes], dict]:
    """The two shards {file: bytes} and the index; each shard holds about ``shard_bytes`` (one bulk tensor)."""
    names = tensor_names()
    half = names.index("language_model.model.tok_embeddings.weight")
    parts = [names[:half], names[half:]]
    files, weight_map, total = {}, {}, 0
    for number, part in enumerate(parts, start=1):
        bulk = part[-1] if number == 1 else part[0]
        tensors = {n: _bytes(n, shard_bytes - shard_bytes % 2 if n == bulk else 8) for n in part}
        filename = f"model-{number:05d}-of-{len(parts):05d}.safetensors"
        files[filename] = safetensors(tensors)
        weight_map.update({n: filename for n in part})
        total += sum(len(v) for v in tensors.values())
    return files, {"metadata": {"total_size": total}, "weight_map": weight_map}


def make_tiny_internvl(shard_bytes: int = 512 * 1024) -> Dict[str, bytes]:
    """Every file of the tiny model, as the hub lists them."""
    files, index = shards(shard_bytes)
    text = {"config.json": config(), "tokenizer_config.json": tokenizer_config(),
            "special_tokens_map.json": {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "</s>", "unk_token": "<unk>"},
            "generation_config.json": {"bos_token_id": 1, "eos_token_id": [2, 92542], "pad_token_id": 2},
            "model.safetensors.index.json": index}
    out = {name: (json.dumps(value, indent=2) + "\n").encode() for name, value in text.items()}
    out["tokenizer.model"] = b"npuenv test world: a stand-in, not a sentencepiece model\n"
    out.update(files)
    return out
