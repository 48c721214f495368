"""The world's stand-in for MindSpeed-MM's examples/internvl2.5/internvl2.5_convert_to_mm_ckpt.py.

Checked against the real script at MindSpeed-MM 0b9ca0a6a2c7ef8cbe38aea762cd68e99b4938fe. It behaves like
the real one where npuenv's wrapper depends on it:
- the same arguments: --model-size, --load-dir, --save-dir, --vpp, and --trust-remote-code as a required
  *string* (argparse type=str: "False" is true, only "" is false);
- the same size table (vit/llm layers, pp size and pipeline splits for 1B–78B); an unknown size is a
  KeyError; a size whose layer counts do not fit the model leaves weights ungrouped and fails with
  "There are some weights ungrouped." as the real one does;
- the model is read with remote code only when trust_remote_code is truthy (InternVL's config needs it);
- the save folder is made with os.makedirs and the run dies with FileExistsError when it exists;
- it writes latest_checkpointed_iteration.txt ("release") and release/mp_rank_00[_PPP]/model_optim_rng.pt.
It prints the ASCEND_TOOLKIT_HOME it saw (so tests see that CANN was sourced). It does not: import torch
or transformers, convert anything. The .pt files it writes are JSON (each
renamed tensor with its shape and the sha256 of its bytes), not torch pickles.
"""

CONVERT_SCRIPT = r'''"""npuenv test world: a stand-in for MindSpeed-MM's InternVL2.5 checkpoint converter (see tests/world/mm_convert.py)."""
import argparse
import hashlib
import json
import os
import struct

SIZES = {  # size: (pp, vit layers, vit split, llm layers, llm split), as the real script's table
    "1B": (1, 24, [24], 24, [24]),
    "2B": (1, 24, [24], 24, [24]),
    "4B": (1, 24, [24], 36, [36]),
    "8B": (1, 24, [24], 32, [32]),
    "26B": (1, 45, [45], 48, [48]),
    "38B": (1, 45, [45], 64, [64]),
    "78B": (16, 45, [11, 12, 12, 10] + [0] * 12, 80, [0, 0, 0, 1, 5, 6, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6]),
}


def load_from_hf(load_dir, trust_remote_code):
    config = json.load(open(os.path.join(load_dir, "config.json")))
    if "auto_map" in config and not trust_remote_code:
        raise ValueError("The repository for " + load_dir + " contains custom code which must be executed to "
                         "correctly load the model. Please pass the argument `trust_remote_code=True`")
    index = json.load(open(os.path.join(load_dir, "model.safetensors.index.json")))
    tensors = {}
    for shard in sorted(set(index["weight_map"].values())):
        with open(os.path.join(load_dir, shard), "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
            body = handle.read()
        header.pop("__metadata__", None)
        for name, entry in header.items():
            begin, end = entry["data_offsets"]
            tensors[name] = (entry["shape"], hashlib.sha256(body[begin:end]).hexdigest())
    return tensors, config


def layer_of(name, prefix):
    rest = name[len(prefix):]
    return int(rest.split(".")[0]) if name.startswith(prefix) else None


def split(tensors, size):
    pp, vit_layers, vit_split, llm_layers, llm_split = SIZES[size]
    stages = [dict() for _ in range(pp)]
    remains = dict(tensors)
    for stage_index, bounds in enumerate(zip(vit_split, llm_split)):
        vit_start, llm_start = sum(vit_split[:stage_index]), sum(llm_split[:stage_index])
        for name in list(remains):
            vit = layer_of(name, "vision_model.encoder.layers.")
            llm = layer_of(name, "language_model.model.layers.")
            inside = (vit is not None and vit_start <= vit < vit_start + bounds[0]) or \
                     (llm is not None and llm_start <= llm < llm_start + bounds[1]) or \
                     (vit is None and llm is None and stage_index == 0)
            if inside:
                stages[stage_index][name] = remains.pop(name)
    return stages, remains


def save_by_pp(stages, save_dir):
    os.makedirs(save_dir)  # as the real one: an existing folder is a FileExistsError
    with open(os.path.join(save_dir, "latest_checkpointed_iteration.txt"), "w") as handle:
        handle.write("release")
    for rank, stage in enumerate(stages):
        folder = "mp_rank_00" if len(stages) == 1 else "mp_rank_00_%03d" % rank
        os.makedirs(os.path.join(save_dir, "release", folder))
        with open(os.path.join(save_dir, "release", folder, "model_optim_rng.pt"), "w") as handle:
            json.dump({"model": stage}, handle, sort_keys=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(allow_abbrev=False, conflict_handler="resolve")
    parser.add_argument("--model-size", type=str, required=True)
    parser.add_argument("--vpp", type=bool, default=False)
    parser.add_argument("--load-dir", type=str, required=True)
    parser.add_argument("--save-dir", type=str, required=True)
    parser.add_argument("--trust-remote-code", type=str, required=True, default=False)
    args, unrecognized = parser.parse_known_args()
    # the stand-in's own line (the real script prints the model here): which CANN its environment had
    print("ASCEND_TOOLKIT_HOME=" + os.environ.get("ASCEND_TOOLKIT_HOME", "(not set)"))
    tensors, config = load_from_hf(args.load_dir, args.trust_remote_code)
    if args.model_size not in SIZES:
        raise KeyError(f" {args.model_size} not exist in model config dict.")
    for name in sorted(tensors):
        print(name, tensors[name][0])
    stages, remains = split(tensors, args.model_size)
    if remains:
        print(sorted(remains)[:5])
        raise RuntimeWarning("There are some weights ungrouped.")
    save_by_pp(stages, args.save_dir)
'''
