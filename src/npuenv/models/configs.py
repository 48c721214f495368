"""`models.config`: MindSpeed-MM's config files for any InternVL2.5 size, from the model's config.json and
tokenizer, with the pinned MindSpeed-MM's shipped 4B/78B files (read from the workspace checkout at run
time) as templates.

Every value that follows from the model is derived, with where it came from; everything else is the
template's, unchanged, and listed as such (a sidecar for JSON, a comment block for the launch script).
Templates: the 4B files for the ViT-300M sizes (1B–8B), the 78B files for the ViT-6B sizes (26B–78B);
inference_4B.json for every size (the only inference file shipped)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..errors import ModelError
from .sizes import INTERNLM2, QWEN2, Size, size_of

KINDS = ("inference", "model", "data", "finetune")
IMG_CONTEXT, IM_END = "<IMG_CONTEXT>", "<|im_end|>"
NORMS = {"layer_norm": "LayerNorm", "rms_norm": "RMSNorm"}


@dataclass(frozen=True)
class ModelFacts:
    folder: Path
    config: dict
    size: Size
    tokens: dict  # token text -> id, from the tokenizer files

    @property
    def vision(self) -> dict:
        return self.config["vision_config"]

    @property
    def llm(self) -> dict:
        return self.config["llm_config"]

    def token(self, text: str) -> int:
        if text not in self.tokens:
            raise ModelError(f"{self.folder}: the tokenizer has no {text} token",
                             hint="tokenizer_config.json (added_tokens_decoder) or tokenizer.json (added_tokens) "
                                  "must list it; fetch the model again: invoke models.fetch NAME")
        return self.tokens[text]


@dataclass(frozen=True)
class Paths:
    """Where the generated files point: absolute paths on this box."""

    model: Path  # the hub's files (tokenizer, config)
    converted: Path  # models.convert's checkpoint folder
    data_path: Path  # the training data's JSON(L)
    data_folder: Path  # the folder its image paths are relative to
    save: Path  # where training saves checkpoints
    model_json: Path  # the generated model_<size>.json the launch script points at
    data_json: Path  # the generated data_<size>.json


@dataclass
class Generated:
    kind: str
    filename: str
    template: str
    text: str = ""
    derived: dict = field(default_factory=dict)  # "a.b.c" -> {"value", "from"}
    from_template: list = field(default_factory=list)  # "a.b.c" kept as the template has it


# --- reading the model -------------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror})",
                         hint="fetch the model first: invoke models.fetch NAME") from None
    except ValueError as exc:
        raise ModelError(f"{path}: not JSON ({exc})", hint="fetch the model again: invoke models.fetch NAME") from None


def read_tokens(folder: Path) -> dict:
    """Added tokens by text: tokenizer_config.json's added_tokens_decoder, else tokenizer.json's added_tokens."""
    tokens: dict = {}
    config = folder / "tokenizer_config.json"
    if config.is_file():
        decoder = _read_json(config).get("added_tokens_decoder") or {}
        tokens.update({str(v.get("content")): int(k) for k, v in decoder.items() if isinstance(v, dict)})
    fast = folder / "tokenizer.json"
    if fast.is_file():
        for item in _read_json(fast).get("added_tokens") or []:
            tokens.setdefault(str(item.get("content")), int(item.get("id")))
    return tokens


def read_facts(folder: Path) -> ModelFacts:
    path = folder / "config.json"
    config = _read_json(path)
    if not isinstance(config, dict):
        raise ModelError(f"{path}: not a JSON object", hint="fetch the model again: invoke models.fetch NAME")
    size = size_of(config, str(path))
    return ModelFacts(folder, config, size, read_tokens(folder))


# --- what each field is ----------------------------------------------------------------------------------


def _llm_fields(f: ModelFacts) -> dict:
    """text_decoder fields -> (value, source), for the keys a template has."""
    llm, arch = f.llm, f.llm["architectures"][0]
    qkv_bias = (True, f"{arch} has qkv biases") if arch == QWEN2 else \
        (bool(llm.get("bias", False)), "config.json llm_config.bias")
    heads = llm["num_attention_heads"]
    out = {
        "num_layers": (llm["num_hidden_layers"], "config.json llm_config.num_hidden_layers"),
        "hidden_size": (llm["hidden_size"], "config.json llm_config.hidden_size"),
        "ffn_hidden_size": (llm["intermediate_size"], "config.json llm_config.intermediate_size"),
        "num_attention_heads": (heads, "config.json llm_config.num_attention_heads"),
        "num_key_value_heads": (llm["num_key_value_heads"], "config.json llm_config.num_key_value_heads"),
        "num_query_groups": (llm["num_key_value_heads"], "config.json llm_config.num_key_value_heads"),
        "kv_channels": (llm["hidden_size"] // heads, "hidden_size / num_attention_heads"),
        "vocab_size": (llm["vocab_size"], "config.json llm_config.vocab_size"),
        "rope_theta": (float(llm["rope_theta"]), "config.json llm_config.rope_theta"),
        "rotary_base": (int(llm["rope_theta"]), "config.json llm_config.rope_theta"),
        "layernorm_epsilon": (llm["rms_norm_eps"], "config.json llm_config.rms_norm_eps"),
        "add_qkv_bias": qkv_bias,
        "untie_embeddings_and_output_weights": (not llm.get("tie_word_embeddings", False),
                                                "config.json llm_config.tie_word_embeddings"),
    }
    return out


def _vision_fields(f: ModelFacts) -> dict:
    v = f.vision
    qk = bool(v.get("qk_normalization", False))
    norm = NORMS.get(str(v.get("norm_type")), str(v.get("norm_type")))
    return {
        "num_layers": (v["num_hidden_layers"], "config.json vision_config.num_hidden_layers"),
        "hidden_size": (v["hidden_size"], "config.json vision_config.hidden_size"),
        "ffn_hidden_size": (v["intermediate_size"], "config.json vision_config.intermediate_size"),
        "num_attention_heads": (v["num_attention_heads"], "config.json vision_config.num_attention_heads"),
        "patch_size": (v["patch_size"], "config.json vision_config.patch_size"),
        "image_size": (v["image_size"], "config.json vision_config.image_size"),
        "add_qkv_bias": (bool(v.get("qkv_bias", False)), "config.json vision_config.qkv_bias"),
        "qk_layernorm": (qk, "config.json vision_config.qk_normalization"),
        "normalization": (norm, "config.json vision_config.norm_type"),
        "layernorm_epsilon": (v["layer_norm_eps"], "config.json vision_config.layer_norm_eps"),
        "downsample_ratio": (f.config["downsample_ratio"], "config.json downsample_ratio"),
        "select_layer": (f.config["select_layer"], "config.json select_layer"),
        "ps_version": (f.config["ps_version"], "config.json ps_version"),
    }


def _top_fields(f: ModelFacts) -> dict:
    return {
        "img_context_token_id": (f.token(IMG_CONTEXT), f"the tokenizer's {IMG_CONTEXT}"),
        "downsample_ratio": (f.config["downsample_ratio"], "config.json downsample_ratio"),
        "select_layer": (f.config["select_layer"], "config.json select_layer"),
        "ps_version": (f.config["ps_version"], "config.json ps_version"),
    }


# --- applying them to a template ---------------------------------------------------------------------------


class _Edit:
    def __init__(self, generated: Generated) -> None:
        self.g = generated

    def set(self, node: dict, path: str, key: str, value: Any, source: str, *, add: bool = False) -> None:
        """Derive `key` of `node` when the template has it (or `add`)."""
        if key in node or add:
            if isinstance(node.get(key), float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            node[key] = value
            self.g.derived[f"{path}.{key}" if path else key] = {"value": value, "from": source}

    def fields(self, node: dict, path: str, fields: dict, *, skip: tuple = ()) -> None:
        for key, (value, source) in fields.items():
            if key not in skip:
                self.set(node, path, key, value, source)

    def drop(self, node: dict, path: str, key: str, why: str) -> None:
        if key in node:
            del node[key]
            self.g.derived[f"{path}.{key}"] = {"value": None, "from": why}


def _leaves(node: Any, path: str = "") -> list:
    if isinstance(node, dict) and node:
        return [leaf for key, value in node.items() for leaf in _leaves(value, f"{path}.{key}" if path else key)]
    return [path]


def _decoder(edit: _Edit, node: dict, path: str, f: ModelFacts, *, pipeline: bool, max_positions: bool) -> None:
    skip = () if max_positions else ("max_position_embeddings",)
    edit.fields(node, path, _llm_fields(f), skip=skip)
    if max_positions:
        edit.set(node, path, "max_position_embeddings", f.llm["max_position_embeddings"],
                 "config.json llm_config.max_position_embeddings")
    arch = f.llm["architectures"][0]
    if arch == INTERNLM2:  # as MindSpeed-MM's InternVL2 configs of InternLM2 models
        edit.set(node, path, "model_id", "internllm", f"{arch}: MindSpeed-MM's decoder for it (examples/internvl2)")
        edit.set(node, path, "position_embedding_type", "rope", f"{arch}: rope")
        edit.drop(node, path, "mrope_section", f"{arch}: rope, no mrope sections")
    if pipeline:
        edit.set(node, path, "pipeline_num_layers", list(f.size.llm_split),
                 f"the conversion script's split for {f.size.name}")


def _vision(edit: _Edit, node: dict, path: str, f: ModelFacts, *, pipeline: bool) -> None:
    edit.fields(node, path, _vision_fields(f))
    qk = bool(f.vision.get("qk_normalization", False))
    for key in ("q_layernorm", "k_layernorm"):
        if qk:
            edit.set(node, path, key, "RMSNorm", "config.json vision_config.qk_normalization", add=True)
        else:
            edit.drop(node, path, key, "config.json vision_config.qk_normalization is false")
    if pipeline:
        edit.set(node, path, "pipeline_num_layers", list(f.size.vit_split),
                 f"the conversion script's split for {f.size.name}")


def _projector(edit: _Edit, node: dict, path: str, f: ModelFacts) -> None:
    edit.set(node, path, "vit_hidden_size", f.vision["hidden_size"], "config.json vision_config.hidden_size")
    edit.set(node, path, "llm_hidden_size", f.llm["hidden_size"], "config.json llm_config.hidden_size")
    edit.set(node, path, "downsample_ratio", f.config["downsample_ratio"], "config.json downsample_ratio")


def _model_json(edit: _Edit, data: dict, f: ModelFacts, paths: Paths) -> None:
    edit.fields(data, "", _top_fields(f))
    _decoder(edit, data["text_decoder"], "text_decoder", f, pipeline=True, max_positions=True)
    _vision(edit, data["image_encoder"]["vision_encoder"], "image_encoder.vision_encoder", f, pipeline=True)
    _projector(edit, data["image_encoder"]["vision_projector"], "image_encoder.vision_projector", f)


def _inference_json(edit: _Edit, data: dict, f: ModelFacts, paths: Paths) -> None:
    edit.fields(data, "", _top_fields(f))
    edit.set(data, "", "template", f.config["template"], "config.json template")
    edit.set(data, "", "from_pretrained", str(paths.converted / "release" / "mp_rank_00" / "model_optim_rng.pt"),
             "models.convert's checkpoint")
    _decoder(edit, data["text_decoder"], "text_decoder", f, pipeline=False, max_positions=False)
    _vision(edit, data["image_encoder"]["vision_encoder"], "image_encoder.vision_encoder", f, pipeline=False)
    _projector(edit, data["image_encoder"]["vision_projector"], "image_encoder.vision_projector", f)
    edit.set(data["tokenizer"], "tokenizer", "from_pretrained", str(paths.model), "the model's folder")
    gen = data["generation_config"]
    edit.set(gen, "generation_config", "bos_token_id", f.llm["bos_token_id"], "config.json llm_config.bos_token_id")
    edit.set(gen, "generation_config", "eos_token_id", f.token(IM_END), f"the tokenizer's {IM_END}")


def _data_json(edit: _Edit, data: dict, f: ModelFacts, paths: Paths) -> None:
    p = data["dataset_param"]
    edit.set(p["basic_parameters"], "dataset_param.basic_parameters", "data_path", str(paths.data_path), "--data-path")
    edit.set(p["basic_parameters"], "dataset_param.basic_parameters", "data_folder", str(paths.data_folder), "--data-folder")
    edit.set(p["tokenizer_config"], "dataset_param.tokenizer_config", "from_pretrained", str(paths.model), "the model's folder")
    pairs = {"template_name": (f.config["template"], "config.json template"),
             "patch_size": (f.vision["patch_size"], "config.json vision_config.patch_size"),
             "image_size": (f.config.get("force_image_size") or f.vision["image_size"], "config.json force_image_size"),
             "down_sample_ratio": (f.config["downsample_ratio"], "config.json downsample_ratio"),
             "dynamic_image_size": (f.config["dynamic_image_size"], "config.json dynamic_image_size"),
             "use_thumbnail": (f.config["use_thumbnail"], "config.json use_thumbnail"),
             "min_dynamic_patch": (f.config["min_dynamic_patch"], "config.json min_dynamic_patch")}
    edit.fields(p, "dataset_param", pairs)
    collate = data["dataloader_param"]["collate_param"]
    edit.set(collate, "dataloader_param.collate_param", "pad_id", f.llm["pad_token_id"], "config.json llm_config.pad_token_id")


JSON_KINDS = {"model": _model_json, "inference": _inference_json, "data": _data_json}


def template_name(kind: str, f: ModelFacts) -> str:
    big = f.size.vit_layers == 45  # ViT-6B: the 78B files
    if kind == "inference":
        return "inference_4B.json"
    if kind == "finetune":
        return f"finetune_internvl2.5_{'78B' if big else '4B'}.sh"
    return f"{kind}_{'78B' if big else '4B'}.json"


def output_name(kind: str, f: ModelFacts) -> str:
    return f"finetune_internvl2.5_{f.size.name}.sh" if kind == "finetune" else f"{kind}_{f.size.name}.json"


def generate(kind: str, f: ModelFacts, templates: Path, paths: Paths, *, devices: Optional[int] = None,
             master_port: Optional[int] = None) -> Generated:
    if kind not in KINDS:
        raise ModelError(f"--kind {kind}: not a kind of config", hint=f"give one of {', '.join(KINDS)}")
    if kind == "inference" and f.size.pp > 1:
        raise ModelError(f"no inference config for {f.size.name}: its checkpoint is converted into {f.size.pp} "
                         "pipeline stages, and MindSpeed-MM's inference loads one file on one stage",
                         hint="run inference with a size the conversion keeps in one stage (1B–38B)")
    name = template_name(kind, f)
    path = templates / name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the template ({exc.strerror})",
                         hint="the workspace's MindSpeed-MM must be the pinned one (invoke bootstrap)") from None
    generated = Generated(kind, output_name(kind, f), name)
    if kind == "finetune":
        from .launchscript import edit_script

        generated.text = edit_script(text, path, f, paths, generated, devices, master_port)
        return generated
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ModelError(f"{path}: not JSON ({exc})", hint="restore the pinned MindSpeed-MM checkout (invoke bootstrap)") from None
    try:
        JSON_KINDS[kind](_Edit(generated), data, f, paths)
    except (KeyError, TypeError) as exc:
        raise ModelError(f"{path}: the template has no {exc} where MindSpeed-MM's has one",
                         hint="the workspace's MindSpeed-MM must be the pinned one (invoke bootstrap)") from None
    generated.from_template = [leaf for leaf in _leaves(data) if leaf not in generated.derived]
    generated.text = json.dumps(data, indent=4) + "\n"
    return generated


def sidecar(generated: Generated) -> str:
    """What of a generated file was derived (and from what), and what is the template's."""
    return json.dumps({"file": generated.filename, "template": generated.template, "derived": generated.derived,
                       "from_template": generated.from_template}, indent=1) + "\n"


# --- writing them into a workspace -------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigRequest:
    name: str
    kind: str
    out: Optional[str] = None  # a file; default: the checkout's examples/internvl2.5/<output name>
    devices: Optional[int] = None  # finetune: NPUS_PER_NODE (default: the NPUs here)
    port: Optional[int] = None  # finetune: MASTER_PORT (default: a free one from 6000)
    data_path: Optional[str] = None
    data_folder: Optional[str] = None
    save: Optional[str] = None


@dataclass(frozen=True)
class Written:
    path: Path
    sidecar: Optional[Path]
    generated: Generated


def write_config(session: Any, project: Path, request: ConfigRequest) -> Written:
    """Generate `request.kind` for the model into the workspace's MindSpeed-MM checkout `project` (or --out)."""
    from ..atomic import write_atomic
    from .launch import free_port, npus_for_script

    model = session.model(request.name)
    facts = read_facts(session.places.model(model.name))
    templates = project / "examples" / "internvl2.5"
    out = Path(request.out).expanduser().absolute() if request.out else templates / output_name(request.kind, facts)
    here = out.parent
    paths = Paths(model=session.places.model(model.name), converted=session.places.converted(model.name),
                  data_path=_given(request.data_path, project / "dataset" / "train.json"),
                  data_folder=_given(request.data_folder, project / "dataset"),
                  save=_given(request.save, project / "ckpt" / f"{model.name}-finetuned"),
                  model_json=here / output_name("model", facts), data_json=here / output_name("data", facts))
    devices = port = None
    if request.kind == "finetune":
        devices = npus_for_script(request.devices, session.environ)
        port = request.port or free_port()
    generated = generate(request.kind, facts, templates, paths, devices=devices, master_port=port)
    sidecar_path = None if request.kind == "finetune" else out.with_name(out.name + ".npuenv.json")
    write_atomic(out, generated.text, mode=0o755 if request.kind == "finetune" else 0o644)
    if sidecar_path is not None:
        write_atomic(sidecar_path, sidecar(generated), mode=0o644)
    return Written(out, sidecar_path, generated)


def _given(value: Optional[str], default: Path) -> Path:
    return Path(value).expanduser().absolute() if value else default


# --- what doctor checks in a config someone runs -----------------------------------------------------------

PATH_KEYS = ("from_pretrained", "data_path", "data_folder", "file_path")


def split_problems(data: Any) -> list[str]:
    """pipeline_num_layers that do not add up to num_layers (text decoder, vision encoder), or that are not
    the splits the conversion script cut the checkpoint into, for a size whose layer counts it knows."""
    problems = []
    nodes = {"text_decoder": (data or {}).get("text_decoder"),
             "image_encoder.vision_encoder": ((data or {}).get("image_encoder") or {}).get("vision_encoder")}
    splits = {}
    for where, node in nodes.items():
        if isinstance(node, dict) and isinstance(node.get("pipeline_num_layers"), list) and "num_layers" in node:
            splits[where] = (tuple(int(n) for n in node["pipeline_num_layers"]), node["num_layers"])
            if sum(splits[where][0]) != node["num_layers"]:
                problems.append(f"{where}.pipeline_num_layers adds up to {sum(splits[where][0])}, "
                                f"num_layers is {node['num_layers']}")
    return problems + _table_problems(splits)


def _table_problems(splits: dict) -> list[str]:
    from .sizes import SIZES

    text, vision = splits.get("text_decoder"), splits.get("image_encoder.vision_encoder")
    if text is None or vision is None:
        return []
    # by the layer counts (1B and 2B share theirs, and their splits)
    size = next((s for s in SIZES if (s.llm_layers, s.vit_layers) == (text[1], vision[1])), None)
    if size is None or (size.llm_split, size.vit_split) == (text[0], vision[0]):
        return []
    return [f"pipeline_num_layers {list(vision[0])} (vision) and {list(text[0])} (text) are not the splits the "
            f"conversion script cuts a {size.name} checkpoint into: {list(size.vit_split)} and {list(size.llm_split)}"]


def missing_paths(data: Any, base: Path, where: str = "") -> list[str]:
    """Paths in the config (from_pretrained, data_path, …) that do not exist; relative ones are taken from
    `base` (the MindSpeed-MM checkout, where training runs). Hub ids (OWNER/NAME) are not paths."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            at = f"{where}.{key}" if where else key
            if key in PATH_KEYS and isinstance(value, str) and value.startswith(("/", "./", "../")):
                if not (base / value).exists():
                    found.append(f"{at}: {value}")
            else:
                found += missing_paths(value, base, at)
    return found
