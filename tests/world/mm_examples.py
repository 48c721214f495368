"""The world's stand-ins for MindSpeed-MM's examples/internvl2.5 config templates (model_4B.json,
model_78B.json, inference_4B.json, data_4B.json, data_78B.json and the two finetune scripts).

Checked against the real files at MindSpeed-MM 0b9ca0a6a2c7ef8cbe38aea762cd68e99b4938fe: the same keys,
nesting and order where models.config reads or writes, and the same values for every field it derives —
including the real files' slips, which the generator must not copy: inference_4B.json's
img_context_token_id 151677 (model_4B.json and the tokenizer say 151667), data_4B.json's pad_id 2 (an
InternLM2 id in a Qwen2.5 model), the 4B script's --vocab-size 92553 and its WORLD_SIZE from an unset
GPUS_PER_NODE, and model_78B.json's pipeline splits, which are not the conversion script's. The stand-ins
lack the real files' other keys where nothing reads them (most of generation_config, the training flags
of the scripts) and everything the scripts do after launching.
"""

from __future__ import annotations

import copy
import json
from typing import Dict


def _vision_300m() -> dict:
    return {"model_id": "InternViT", "num_layers": 24, "pipeline_num_layers": [24], "hidden_size": 1024,
            "ffn_hidden_size": 4096, "num_attention_heads": 16, "num_channels": 3, "patch_size": 14,
            "image_size": 448, "add_qkv_bias": True, "qk_layernorm": False, "activation_func": "gelu",
            "normalization": "LayerNorm", "layernorm_epsilon": 1e-6, "hidden_dropout": 0.0, "drop_path_rate": 0.0,
            "attention_dropout": 0.0, "init_method_std": 0.02, "initializer_factor": 1.0,
            "output_hidden_states": False, "use_return_dict": False, "params_dtype": "bf16", "post_layer_norm": False,
            "downsample_ratio": 0.5, "fp16": False, "bf16": True, "attention_softmax_in_fp32": False,
            "select_layer": -1, "ps_version": "v2", "freeze": True}


def model_4b() -> dict:
    return {
        "model_id": "InternVL2.5", "pre_process": True, "post_process": True, "add_text_encoder": False,
        "img_embedding_idx": 1, "downsample_ratio": 0.5, "select_layer": -1, "ps_version": "v2",
        "add_rmsnorm_offset": False, "img_context_token_id": 151667,
        "text_decoder": {
            "model_id": "Qwen2.5llm", "num_layers": 36, "pipeline_num_layers": [36], "hidden_size": 2048,
            "ffn_hidden_size": 11008, "num_attention_heads": 16, "num_key_value_heads": 2,
            "max_position_embeddings": 32768, "vocab_size": 151674, "rope_theta": 1000000.0, "rotary_base": 1000000,
            "untie_embeddings_and_output_weights": True, "disable_bias_linear": True, "attention_dropout": 0.0,
            "init_method_std": 0.01, "hidden_dropout": 0.0, "position_embedding_type": "mrope",
            "normalization": "RMSNorm", "activation_func": "silu", "attention_softmax_in_fp32": True,
            "use_fused_rotary_pos_emb": False, "params_dtype": "bf16", "bf16": True, "fp16_lm_cross_entropy": False,
            "parallel_output": True, "group_query_attention": True, "num_query_groups": 2,
            "mrope_section": [16, 24, 24], "rope_scaling": None, "gated_linear_unit": True,
            "layernorm_epsilon": 1e-06, "add_bias_linear": False, "add_qkv_bias": True},
        "image_encoder": {"vision_encoder": _vision_300m(),
                          "vision_projector": {"model_id": "InternVLMLP", "downsample_ratio": 0.5,
                                               "vit_hidden_size": 1024, "llm_hidden_size": 2048}},
        "text_encoder": None, "video_encoder": None,
    }


def model_78b() -> dict:
    data = model_4b()
    decoder = data["text_decoder"]
    for key in ("rope_theta", "untie_embeddings_and_output_weights", "disable_bias_linear", "mrope_section"):
        del decoder[key]
    decoder.update({"model_id": "internllm", "num_layers": 80,
                    "pipeline_num_layers": [0, 3, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 5, 5, 5, 2], "hidden_size": 8192,
                    "ffn_hidden_size": 29568, "num_attention_heads": 64, "num_key_value_heads": 8,
                    "rotary_percent": 1.0, "position_embedding_type": "rope", "num_query_groups": 8,
                    "recompute_granularity": "full", "recompute_method": "uniform", "recompute_num_layers": 1})
    vision = data["image_encoder"]["vision_encoder"]
    vision.update({"num_layers": 45, "pipeline_num_layers": [45] + [0] * 15, "hidden_size": 3200,
                   "ffn_hidden_size": 12800, "num_attention_heads": 25, "add_qkv_bias": False, "qk_layernorm": True,
                   "normalization": "RMSNorm", "drop_path_rate": 0.4})
    items = list(vision.items())  # q/k_layernorm follow normalization, as in the real file
    at = [k for k, _ in items].index("normalization") + 1
    data["image_encoder"]["vision_encoder"] = dict(items[:at] + [("q_layernorm", "RMSNorm"), ("k_layernorm", "RMSNorm")]
                                                   + items[at:])
    data["image_encoder"]["vision_projector"].update({"vit_hidden_size": 3200, "llm_hidden_size": 8192})
    return data


def inference_4b() -> dict:
    vision = {k: v for k, v in _vision_300m().items() if k != "pipeline_num_layers"}
    return {
        "infer_data_type": "image", "file_path": "./examples/internvl2.5/view.jpg",
        "prompts": "Please describe the image shortly.", "pipeline_class": "InternVLPipeline",
        "from_pretrained": "./ckpt/model_optim_rng.pt", "template": "internvl2_5", "dtype": "bf16", "device": "npu",
        "pre_process": True, "post_process": True, "add_text_encoder": False, "img_embedding_idx": 1,
        "downsample_ratio": 0.5, "select_layer": -1, "ps_version": "v2", "img_context_token_id": 151677,
        "num_segments": 8,
        "text_decoder": {
            "model_id": "Qwen2.5llm", "num_layers": 36, "hidden_size": 2048, "num_attention_heads": 16,
            "num_query_groups": 2, "ffn_hidden_size": 11008, "kv_channels": 128, "hidden_dropout": 0.0,
            "attention_dropout": 0.0, "layernorm_epsilon": 1e-06, "normalization": "RMSNorm", "qk_layernorm": False,
            "add_bias_linear": False, "add_qkv_bias": True, "gated_linear_unit": True, "init_method_std": 0.01,
            "max_position_embeddings": 4096, "fp16": False, "bf16": True, "params_dtype": "bf16",
            "rotary_percent": 1.0, "position_embedding_type": "mrope", "mrope_section": [16, 24, 24],
            "rope_scaling": None, "activation_func": "silu", "vocab_size": 151674, "rope_theta": 1000000.0,
            "is_encoder_decoder": False},
        "image_encoder": {"vision_encoder": vision,
                          "vision_projector": {"model_id": "InternVLMLP", "downsample_ratio": 0.5,
                                               "vit_hidden_size": 1024, "llm_hidden_size": 2048}},
        "tokenizer": {"hub_backend": "hf", "autotokenizer_name": "AutoTokenizer",
                      "from_pretrained": "OpenGVLab/InternVL2_5-4B", "add_eos_token": False, "use_fast": False},
        "generation_config": {"do_sample": False, "bos_token_id": 151643, "eos_token_id": 151645,
                              "pad_token_id": None, "max_length": 20, "max_new_tokens": 1024, "temperature": 1.0,
                              "top_k": 50, "top_p": 1.0, "num_beams": 1},
        "text_encoder": None, "video_encoder": None,
    }


def data_4b(size: str = "4B", pad_id: int = 2) -> dict:
    return {
        "dataset_param": {
            "dataset_type": "multimodal",
            "basic_parameters": {"data_path": "/path/json_path", "data_folder": "/path/root_path", "repeat_time": 1},
            "preprocess_parameters": {"image_reader_type": "torchvision", "train_pipeline": {"image": [
                {"trans_type": "Pad2Square", "param": {"mean": [0.485, 0.456, 0.406]}},
                {"trans_type": "Resize", "param": {"size": [448, 448], "interpolation": "BICUBIC"}},
                {"trans_type": "ToTensor"},
                {"trans_type": "norm_fun", "param": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}]}},
            "tokenizer_config": {"hub_backend": "hf", "autotokenizer_name": "AutoTokenizer",
                                 "from_pretrained": f"OpenGVLab/InternVL2_5-{size}", "add_eos_token": False,
                                 "use_fast": False},
            "use_text_processer": True, "template_name": "internvl2_5", "patch_size": 14, "image_size": 448,
            "down_sample_ratio": 0.5, "group_by_length": True, "dynamic_image_size": True, "use_thumbnail": True,
            "min_dynamic_patch": 1, "max_dynamic_patch": 6, "min_num_frame": 4, "max_num_frame": 12,
            "sampling_method": "rand"},
        "dataloader_param": {"dataloader_mode": "sampler", "shuffle": True, "drop_last": True, "pin_memory": True,
                             "sampler_type": "BaseRandomBatchSampler",
                             "collate_param": {"model_name": "internvl", "pad_id": pad_id}},
    }


FINETUNE_4B = """\
#!/bin/bash
# npuenv test world: a stand-in for MindSpeed-MM's finetune_internvl2.5_4B.sh (the lines models.config edits)
source /usr/local/Ascend/ascend-toolkit/set_env.sh
export HCCL_CONNECT_TIMEOUT=1200

NPUS_PER_NODE=8
MASTER_ADDR=localhost
MASTER_PORT=6000
NNODES=1
NODE_RANK=0
WORLD_SIZE=$(($GPUS_PER_NODE*$NNODES))

MBS=1
GRAD_ACC_STEP=64
TP=1
PP=1
CP=1
DP=$(($WORLD_SIZE/$TP/$PP/$CP))
GBS=$(($MBS*$GRAD_ACC_STEP*$DP))

MM_DATA="./examples/internvl2.5/data_4B.json"
MM_MODEL="./examples/internvl2.5/model_4B.json"
MM_TOOL="./mindspeed_mm/tools/tools.json"
LOAD_PATH="./ckpt/mm_path/internvl2_5"
SAVE_PATH="save_dir"

GPT_ARGS="
    --tensor-model-parallel-size ${TP} \\
    --pipeline-model-parallel-size ${PP} \\
    --seq-length 4096 \\
    --tokenizer-type NullTokenizer \\
    --vocab-size 92553 \\
    --position-embedding-type rope \\
    --rotary-base 1000000 \\
    --normalization RMSNorm \\
    --trust-remote-code \\
"

echo "would launch torchrun on ${NPUS_PER_NODE} NPUs x ${NNODES} nodes, port ${MASTER_PORT}: pretrain_internvl.py $GPT_ARGS"
"""

FINETUNE_78B = (FINETUNE_4B.replace("finetune_internvl2.5_4B.sh", "finetune_internvl2.5_78B.sh")
                .replace("NPUS_PER_NODE=8\nMASTER_ADDR=localhost\n",
                         'NPUS_PER_NODE=16\nHOSTFILE="examples/internvl2.5/hostfile.txt"\n'
                         "MASTER_ADDR=$(head -n1 $HOSTFILE | awk '{print $1;}')\n")
                .replace("NNODES=1\n", "NNODES=$(cat $HOSTFILE | wc -l)\n")
                .replace("WORLD_SIZE=$(($GPUS_PER_NODE*$NNODES))", "WORLD_SIZE=$(($NPUS_PER_NODE*$NNODES))")
                .replace("GRAD_ACC_STEP=64", "GRAD_ACC_STEP=128").replace("PP=1\n", "PP=16\n")
                .replace("_4B.json", "_78B.json").replace("internvl2_5\"", "internvl2_5-78B\"")
                .replace("--vocab-size 92553", "--vocab-size 151674"))


def _json(data: dict) -> str:
    return json.dumps(data, indent=4) + "\n"


EXAMPLE_FILES: Dict[str, str] = {
    "examples/internvl2.5/model_4B.json": _json(model_4b()),
    "examples/internvl2.5/model_78B.json": _json(model_78b()),
    "examples/internvl2.5/inference_4B.json": _json(inference_4b()),
    "examples/internvl2.5/data_4B.json": _json(data_4b()),
    "examples/internvl2.5/data_78B.json": _json(data_4b("78B", 151643)),
    "examples/internvl2.5/finetune_internvl2.5_4B.sh": FINETUNE_4B,
    "examples/internvl2.5/finetune_internvl2.5_78B.sh": FINETUNE_78B,
}
