"""models.config's generator on config.json files shaped like every real InternVL2.5 size, with the world's
stand-ins of MindSpeed-MM's shipped templates (tests/world/mm_examples.py): derived fields equal the
model's facts, splits add up, and regenerating the shipped 4B and 78B files reproduces every derived field
except the shipped files' known slips, which the generator corrects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from npuenv.errors import ModelError
from npuenv.models.configs import KINDS, Paths, generate, missing_paths, read_facts, sidecar, split_problems
from npuenv.models.launchscript import launch_devices
from npuenv.models.sizes import SIZES, model_size
from tests.world import internvl_configs as shapes
from tests.world.mm_examples import EXAMPLE_FILES

ALL = list(shapes.SIZES)


@pytest.fixture
def templates(tmp_path) -> Path:
    for name, text in EXAMPLE_FILES.items():
        (tmp_path / "mm" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "mm" / name).write_text(text)
    return tmp_path / "mm" / "examples" / "internvl2.5"


def paths(tmp_path: Path) -> Paths:
    return Paths(model=tmp_path / "models" / "M", converted=tmp_path / "models_ms" / "M", data_path=tmp_path / "d.json",
                 data_folder=tmp_path / "data", save=tmp_path / "save", model_json=tmp_path / "out" / "model.json",
                 data_json=tmp_path / "out" / "data.json")


def facts(tmp_path: Path, size: str):
    return read_facts(shapes.write_model(tmp_path / "models" / size, size))


def made(kind, size, templates, tmp_path, **kw):
    return generate(kind, facts(tmp_path, size), templates, paths(tmp_path), **kw)


# --- sizes ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ALL)
def test_every_size_is_read_from_its_config_json(size):
    assert model_size(shapes.config(size), "config.json") == size


def test_sizes_splits_add_up_to_their_layers():
    for size in SIZES:
        assert sum(size.vit_split) == size.vit_layers and sum(size.llm_split) == size.llm_layers
        assert len(size.vit_split) == len(size.llm_split) == size.pp


def test_an_unknown_shape_is_named_with_the_known_sizes():
    config = shapes.config("8B")
    config["llm_config"]["num_hidden_layers"] = 40
    with pytest.raises(ModelError) as info:
        model_size(config, "m/config.json")
    assert "m/config.json: no InternVL2.5 size has 24 vision layers and a InternLM2ForCausalLM of 40 layers" in info.value.message
    assert "1B, 2B, 4B, 8B, 26B, 38B, 78B" in info.value.hint


@pytest.mark.parametrize("damage, expected", [
    (lambda folder: (folder / "config.json").unlink(), "config.json: cannot read"),
    (lambda folder: (folder / "config.json").write_text("{"), "config.json: not JSON"),
    (lambda folder: (folder / "config.json").write_text(json.dumps({"vision_config": {"num_hidden_layers": 24}})),
     "config.json: no llm_config.num_hidden_layers"),
])
def test_a_missing_or_damaged_config_is_named(tmp_path, damage, expected):
    folder = shapes.write_model(tmp_path / "m", "8B")
    damage(folder)
    with pytest.raises(ModelError) as info:
        read_facts(folder)
    assert expected in info.value.message


# --- every kind for every size -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ALL)
def test_the_model_file_carries_the_model_s_facts(size, templates, tmp_path):
    out = json.loads(made("model", size, templates, tmp_path).text)
    config, decoder, vision = shapes.config(size), out["text_decoder"], out["image_encoder"]["vision_encoder"]
    llm, vit = config["llm_config"], config["vision_config"]
    assert (decoder["num_layers"], decoder["hidden_size"], decoder["ffn_hidden_size"], decoder["num_attention_heads"],
            decoder["num_query_groups"], decoder["vocab_size"]) == (
        llm["num_hidden_layers"], llm["hidden_size"], llm["intermediate_size"], llm["num_attention_heads"],
        llm["num_key_value_heads"], llm["vocab_size"])
    assert (vision["num_layers"], vision["hidden_size"], vision["ffn_hidden_size"], vision["num_attention_heads"],
            vision["add_qkv_bias"], vision["qk_layernorm"]) == (
        vit["num_hidden_layers"], vit["hidden_size"], vit["intermediate_size"], vit["num_attention_heads"],
        vit["qkv_bias"], vit["qk_normalization"])
    assert ("q_layernorm" in vision) is vit["qk_normalization"]
    assert out["image_encoder"]["vision_projector"]["llm_hidden_size"] == llm["hidden_size"]
    assert split_problems(out) == []
    internlm = llm["architectures"] == ["InternLM2ForCausalLM"]
    assert out["img_context_token_id"] == (92546 if internlm else 151667)
    assert decoder["add_qkv_bias"] is not internlm
    if internlm:
        assert decoder["model_id"] == "internllm" and decoder["position_embedding_type"] == "rope"
        assert "mrope_section" not in decoder


def test_no_inference_file_for_a_checkpoint_cut_into_pipeline_stages(templates, tmp_path):
    with pytest.raises(ModelError, match="no inference config for 78B: its checkpoint is converted into 16"):
        made("inference", "78B", templates, tmp_path)


def test_a_path_the_launch_script_would_split_is_refused(templates, tmp_path):
    spaced = tmp_path / "my models"
    with pytest.raises(ModelError, match="uses its paths unquoted"):
        generate("finetune", facts(tmp_path, "8B"), templates, paths(spaced), devices=8, master_port=6000)


@pytest.mark.parametrize("size", [s for s in ALL if s != "78B"])
def test_inference_and_data_files_point_at_this_box(size, templates, tmp_path):
    inference = json.loads(made("inference", size, templates, tmp_path).text)
    data = json.loads(made("data", size, templates, tmp_path).text)
    internlm = size in ("2B", "8B", "26B")
    assert inference["tokenizer"]["from_pretrained"] == str(tmp_path / "models" / "M")
    assert inference["from_pretrained"] == str(tmp_path / "models_ms" / "M" / "release" / "mp_rank_00" / "model_optim_rng.pt")
    assert inference["generation_config"]["eos_token_id"] == (92542 if internlm else 151645)
    assert inference["generation_config"]["bos_token_id"] == (1 if internlm else 151643)
    assert data["dataset_param"]["tokenizer_config"]["from_pretrained"] == str(tmp_path / "models" / "M")
    assert data["dataset_param"]["basic_parameters"]["data_path"] == str(tmp_path / "d.json")
    assert data["dataloader_param"]["collate_param"]["pad_id"] == (2 if internlm else 151643)
    assert data["dataset_param"]["max_dynamic_patch"] == 6  # not derivable: the template's choice, kept


@pytest.mark.parametrize("size", ["2B", "8B"])
def test_a_launch_script_for_an_internlm_size_on_a_small_box(size, templates, tmp_path):
    script = made("finetune", size, templates, tmp_path, devices=2, master_port=6123).text
    assert "--vocab-size 92553" in script and "NPUS_PER_NODE=2\n" in script and "MASTER_PORT=6123\n" in script
    assert "GPUS_PER_NODE" not in script.replace("reads an unset GPUS_PER_NODE", "")
    assert "WORLD_SIZE=$(($NPUS_PER_NODE*$NNODES))" in script and "PP=1\n" in script
    assert f"MM_MODEL={tmp_path}/out/model.json" in script and f"LOAD_PATH={tmp_path}/models_ms/M" in script
    assert launch_devices(script) == 2
    assert script.startswith("#!/bin/bash\n# Written by `invoke models.config --kind finetune` from MindSpeed-MM's "
                             "finetune_internvl2.5_4B.sh.")


def test_the_78b_launch_script_keeps_its_hostfile_and_gets_the_pipeline_size(templates, tmp_path):
    script = made("finetune", "78B", templates, tmp_path, devices=8, master_port=6000).text
    assert "PP=16\n" in script and "--vocab-size 151674" in script and "HOSTFILE=" in script
    assert "NNODES=$(cat $HOSTFILE | wc -l)" in script


def test_a_template_missing_a_line_it_must_set_is_named(templates, tmp_path):
    script = templates / "finetune_internvl2.5_4B.sh"
    script.write_text(script.read_text().replace("MASTER_PORT=6000\n", ""))
    with pytest.raises(ModelError) as info:
        made("finetune", "8B", templates, tmp_path, devices=8, master_port=6000)
    assert f"{script}: no `MASTER_PORT` line to set" in info.value.message


def test_a_template_without_a_section_is_named(templates, tmp_path):
    model = templates / "model_4B.json"
    data = json.loads(model.read_text())
    del data["image_encoder"]
    model.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="model_4B.json: the template has no 'image_encoder'"):
        made("model", "8B", templates, tmp_path)


def test_the_sidecar_lists_every_derived_and_every_kept_field(templates, tmp_path):
    generated = made("model", "8B", templates, tmp_path)
    listed = json.loads(sidecar(generated))
    assert listed["template"] == "model_4B.json" and listed["file"] == "model_8B.json"
    assert listed["derived"]["text_decoder.num_layers"] == {"value": 32, "from": "config.json llm_config.num_hidden_layers"}
    assert "text_decoder.activation_func" in listed["from_template"]
    assert not set(listed["derived"]) & set(listed["from_template"])


# --- regenerating the shipped files ---------------------------------------------------------------------------

SLIPS = {  # (template, field): (shipped, right)
    ("inference_4B.json", "img_context_token_id"): (151677, 151667),
    ("data_4B.json", "dataloader_param.collate_param.pad_id"): (2, 151643),
    ("model_78B.json", "text_decoder.pipeline_num_layers"): ([0, 3, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 5, 5, 5, 2],
                                                             [0, 0, 0, 1, 5, 6, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6]),
    ("model_78B.json", "image_encoder.vision_encoder.pipeline_num_layers"): ([45] + [0] * 15, [11, 12, 12, 10] + [0] * 12),
}


def value_at(data, dotted):
    for key in dotted.split("."):
        data = data[key]
    return data


@pytest.mark.parametrize("kind, size", [("model", "4B"), ("inference", "4B"), ("data", "4B"), ("model", "78B"),
                                        ("data", "78B")])
def test_regenerating_a_shipped_file_reproduces_every_derived_field_but_its_slips(kind, size, templates, tmp_path):
    generated = made(kind, size, templates, tmp_path)
    shipped = json.loads((templates / generated.template).read_text())
    assert generated.template == f"{kind}_{'4B' if kind == 'inference' else size}.json"
    out = json.loads(generated.text)
    slipped = {}
    for field, entry in generated.derived.items():
        if "/" in str(entry["value"]):  # paths into this box: the shipped ones are placeholders
            continue
        if value_at(shipped, field) != entry["value"]:
            slipped[field] = (value_at(shipped, field), value_at(out, field))
    expected = {f: v for (t, f), v in SLIPS.items() if t == generated.template}
    assert slipped == expected


def test_the_4b_script_gets_qwen_s_vocabulary_and_a_world_size_from_its_npus(templates, tmp_path):
    shipped = (templates / "finetune_internvl2.5_4B.sh").read_text()
    assert "--vocab-size 92553" in shipped and "$GPUS_PER_NODE" in shipped  # the shipped slips
    script = made("finetune", "4B", templates, tmp_path, devices=8, master_port=6000).text
    assert "--vocab-size 151674" in script and "WORLD_SIZE=$(($NPUS_PER_NODE*$NNODES))" in script


def test_a_finetune_script_needs_the_npu_count(templates, tmp_path):
    with pytest.raises(ModelError, match="needs the NPU count"):
        made("finetune", "8B", templates, tmp_path)


def test_doctor_s_config_checks_find_bad_splits_and_missing_paths(templates, tmp_path):
    data = json.loads(made("model", "8B", templates, tmp_path).text)
    assert split_problems(data) == []
    data["text_decoder"]["pipeline_num_layers"] = [16, 15]
    assert split_problems(data) == [
        "text_decoder.pipeline_num_layers adds up to 31, num_layers is 32",
        "pipeline_num_layers [24] (vision) and [16, 15] (text) are not the splits the conversion script cuts a 8B "
        "checkpoint into: [24] and [32]"]
    shipped_78b = json.loads((templates / "model_78B.json").read_text())  # sums fine, but not the conversion's
    assert split_problems(shipped_78b) == [
        "pipeline_num_layers [45, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] (vision) and [0, 3, 6, 6, 6, 6, 6, 6, 6, "
        "6, 6, 6, 5, 5, 5, 2] (text) are not the splits the conversion script cuts a 78B checkpoint into: "
        "[11, 12, 12, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] and [0, 0, 0, 1, 5, 6, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6]"]
    (tmp_path / "here").mkdir()
    config = {"from_pretrained": "./here", "tokenizer": {"from_pretrained": "OpenGVLab/InternVL2_5-8B"},
              "dataset_param": {"basic_parameters": {"data_path": str(tmp_path / "gone.json")}}}
    assert missing_paths(config, tmp_path) == [f"dataset_param.basic_parameters.data_path: {tmp_path}/gone.json"]
