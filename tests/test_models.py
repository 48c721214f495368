"""models: the spec's `models:` section, the hub's revision info, file and shard verification, the marker,
and the conversion wrapper's pure parts (RAM, arguments, provenance). The hub and the conversion run for
real in tests/test_models_e2e.py."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from npuenv.errors import ModelError, SpecError
from npuenv.models import convert
from npuenv.models.catalog import model_named, models_of
from npuenv.models.hubapi import HubFile, RepoFiles, parse_revision_info
from npuenv.models.verify import (changed_since, file_problem, git_blob_id, index_problems, read_marker,
                                  write_marker)
from npuenv.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]


def spec_with(tmp_path: Path, models: object) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps({"extends": str(ROOT / "env_specs" / "mindspeed-mm-internvl2.5.yaml"),
                                "models": models}), encoding="utf-8")
    return path


# --- the spec's models: ---------------------------------------------------------------------------------------


def test_the_default_spec_lists_the_internvl25_family_unpinned():
    spec = load_spec("mindspeed-mm-internvl2.5")
    models = models_of(spec)
    assert list(models) == [f"InternVL2_5-{size}" for size in ("1B", "2B", "4B", "8B", "26B", "38B", "78B")]
    assert all(m.hub == f"OpenGVLab/{name}" and m.revision is None and m.wanted == "main" for name, m in models.items())


def test_a_model_may_be_pinned_and_is_found_by_any_case(tmp_path):
    spec = load_spec(spec_with(tmp_path, {"InternVL2_5-8B": {"revision": "a" * 40}}))
    model = model_named(spec, "internvl2_5-8b")
    assert (model.name, model.hub, model.revision, model.wanted) == ("InternVL2_5-8B", "OpenGVLab/InternVL2_5-8B",
                                                                     "a" * 40, "a" * 40)


@pytest.mark.parametrize("models, expected", [
    ({"Mine": {"hub": "no-slash"}}, "models.Mine.hub: expected a hub repo id like 'OpenGVLab/InternVL2_5-8B'"),
    ({"Mine": {"hub": "a/b", "revision": "main"}}, "models.Mine.revision: expected a full commit id"),
    ({"Mine": {"hub": "a/b", "revison": "x"}}, "models.Mine.revison: unknown key 'revison': did you mean 'revision'?"),
    ({"../up": {"hub": "a/b"}}, "the model name '../up' must match"),
    ({"Mine": {"ref": "main"}}, "models.Mine.hub: missing (required)"),
])
def test_bad_models_are_named_with_file_line_and_key(tmp_path, models, expected):
    with pytest.raises(SpecError) as info:
        load_spec(spec_with(tmp_path, models))
    assert any(expected in p and "s.yaml:" in p for p in info.value.problems), info.value.problems


def test_an_unknown_model_lists_the_spec_s_models():
    with pytest.raises(ModelError) as info:
        model_named(load_spec("mindspeed-mm-internvl2.5"), "InternVL3-8B")
    assert "no model named 'InternVL3-8B'" in info.value.message
    assert "InternVL2_5-1B, InternVL2_5-2B" in info.value.hint


# --- the hub's revision info ------------------------------------------------------------------------------------

SHA = "ab" * 20


def test_revision_info_keeps_sizes_lfs_hashes_and_blob_ids():
    repo = parse_revision_info("o/m", {"sha": SHA, "siblings": [
        {"rfilename": "model-00001-of-00001.safetensors", "size": 10, "blobId": "1" * 40,
         "lfs": {"sha256": "C" * 64, "size": 10, "pointerSize": 130}},
        {"rfilename": "config.json", "size": 3, "blobId": "2" * 40}]})
    assert repo.revision == SHA and repo.total == 13
    assert [(f.path, f.lfs, f.sha256) for f in repo.files] == [
        ("config.json", False, None), ("model-00001-of-00001.safetensors", True, "c" * 64)]


@pytest.mark.parametrize("siblings, expected", [
    ([{"rfilename": "../../etc/passwd", "size": 1, "blobId": "x"}], "outside the model's folder: ../../etc/passwd"),
    ([{"rfilename": "/abs", "size": 1, "blobId": "x"}], "outside the model's folder: /abs"),
    ([{"rfilename": "config.json", "blobId": "x"}], "without rfilename, size or blobId"),
])
def test_a_hostile_or_sizeless_answer_is_refused(siblings, expected):
    with pytest.raises(ModelError) as info:
        parse_revision_info("o/m", {"sha": SHA, "siblings": siblings})
    assert expected in info.value.message


def test_an_answer_that_is_not_the_hub_s_is_refused():
    with pytest.raises(ModelError) as info:
        parse_revision_info("o/m", {"error": "nope"})
    assert "no commit" in info.value.message and "HF_ENDPOINT" in info.value.hint


# --- files, shards, the marker -------------------------------------------------------------------------------


def safetensors(path: Path, tensors: dict) -> int:
    """A safetensors file of uint8 tensors {name: bytes}; returns the tensor bytes written."""
    header, body = {"__metadata__": {"format": "pt"}}, b""
    for name, data in tensors.items():
        header[name] = {"dtype": "U8", "shape": [len(data)], "data_offsets": [len(body), len(body) + len(data)]}
        body += data
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)
    return len(body)


def sharded_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    first = safetensors(folder / "model-00001-of-00002.safetensors", {"a.weight": b"\1" * 8, "b.weight": b"\2" * 4})
    second = safetensors(folder / "model-00002-of-00002.safetensors", {"c.weight": b"\3" * 6})
    index = {"metadata": {"total_size": first + second}, "weight_map": {
        "a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00001-of-00002.safetensors",
        "c.weight": "model-00002-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder


def test_shards_that_match_their_index_pass(tmp_path):
    assert index_problems(sharded_model(tmp_path / "m")) == []


def test_a_missing_shard_is_named(tmp_path):
    folder = sharded_model(tmp_path / "m")
    (folder / "model-00002-of-00002.safetensors").unlink()
    assert index_problems(folder) == ["model-00002-of-00002.safetensors: named in model.safetensors.index.json but missing"]


def test_a_shard_without_a_tensor_the_index_names_is_named(tmp_path):
    folder = sharded_model(tmp_path / "m")
    safetensors(folder / "model-00002-of-00002.safetensors", {"d.weight": b"\3" * 6})
    assert index_problems(folder) == ["model-00002-of-00002.safetensors: 1 tensors of the index missing (e.g. c.weight)"]


def test_a_truncated_shard_is_not_a_safetensors_file(tmp_path):
    folder = sharded_model(tmp_path / "m")
    shard = folder / "model-00001-of-00002.safetensors"
    shard.write_bytes(shard.read_bytes()[:20])
    assert "not a safetensors file" in index_problems(folder)[0]


def test_a_total_size_that_does_not_add_up_is_named(tmp_path):
    folder = sharded_model(tmp_path / "m")
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    index["metadata"]["total_size"] += 1
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    assert index_problems(folder) == ["model.safetensors.index.json: the shards hold 18 bytes of tensors, "
                                      "metadata.total_size says 19"]


def test_files_are_checked_by_sha256_or_by_git_blob_id(tmp_path):
    import hashlib

    (tmp_path / "config.json").write_text("{}\n")
    (tmp_path / "w.safetensors").write_bytes(b"weights")
    blob = HubFile("config.json", 3, None, git_blob_id(tmp_path / "config.json"))
    lfs = HubFile("w.safetensors", 7, hashlib.sha256(b"weights").hexdigest(), "x")
    # git's own id for "{}\n", as `git hash-object` prints it
    assert blob.blob_id == "0967ef424bce6791893e9a57bb952f80fd536e93"
    assert file_problem(tmp_path, blob) is None and file_problem(tmp_path, lfs) is None
    (tmp_path / "w.safetensors").write_bytes(b"weightz")
    assert file_problem(tmp_path, lfs).startswith("sha256 ")
    assert file_problem(tmp_path, HubFile("gone.json", 1, None, "x")) == "missing"
    assert file_problem(tmp_path, HubFile("config.json", 4, None, "x")) == "3 bytes, the hub says 4"


def test_the_marker_notices_a_changed_or_missing_file(tmp_path):
    folder = sharded_model(tmp_path / "m")
    files = tuple(HubFile(p.name, p.stat().st_size, None, "x") for p in sorted(folder.iterdir()))
    marker = write_marker(folder, RepoFiles("o/m", SHA, files))
    assert read_marker(folder) == marker and changed_since(folder, marker) is None
    with open(folder / "model-00002-of-00002.safetensors", "ab") as handle:
        handle.write(b"x")
    assert changed_since(folder, marker) == "model-00002-of-00002.safetensors changed since it was verified"
    (folder / "model-00002-of-00002.safetensors").unlink()
    assert changed_since(folder, marker) == "model-00002-of-00002.safetensors is missing"


# --- the conversion wrapper's pure parts ------------------------------------------------------------------------


def test_trust_remote_code_is_passed_as_the_string_the_script_can_read():
    import argparse

    parser = argparse.ArgumentParser()  # as the script declares it
    parser.add_argument("--trust-remote-code", type=str, required=True, default=False)
    for trust in (True, False):
        argv = convert.script_argv(Path("py"), Path("s.py"), "8B", Path("in"), Path("out"), trust)
        value = parser.parse_known_args(argv[argv.index("--trust-remote-code"):])[0].trust_remote_code
        assert bool(value) is trust, (trust, value)


def meminfo(tmp_path: Path, kib: int) -> dict:
    path = tmp_path / "meminfo"
    path.write_text(f"MemTotal:       {kib * 2} kB\nMemFree:        1 kB\nMemAvailable:   {kib} kB\n")
    return {convert.MEMINFO_VARIABLE: str(path)}


def test_ram_is_checked_at_four_bytes_per_parameter(tmp_path):
    environ = meminfo(tmp_path, 40 * 1024 * 1024)  # 40 GiB available
    assert convert.check_ram("InternVL2_5-8B", 8_075_365_376, environ) == 8_075_365_376 * 4
    with pytest.raises(ModelError) as info:
        convert.check_ram("InternVL2_5-78B", 78_408_318_976, environ)
    assert "needs about 292.1 GiB of RAM (78.4 billion parameters × 4 bytes in fp32); 40.0 GiB is available" \
        in info.value.message


def test_the_parameter_count_comes_from_the_index_and_the_dtype(tmp_path):
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 16150730752}}))
    # InternVL2_5-8B's index: 16150730752 bytes in bf16
    assert convert.parameter_count(tmp_path, {"torch_dtype": "bfloat16"}) == 8_075_365_376
    (tmp_path / "model.safetensors.index.json").write_text("{}")
    with pytest.raises(ModelError, match="no metadata.total_size"):
        convert.parameter_count(tmp_path, {})


def test_provenance_is_stale_when_any_input_or_output_changed(tmp_path):
    out = tmp_path / "ckpt"
    (out / "release").mkdir(parents=True)
    (out / "release" / "model_optim_rng.pt").write_bytes(b"x")
    wanted = {"source": {"hub": "o/m", "revision": SHA}, "script": {"commit": "c" * 40, "sha256": "d" * 64},
              "model_size": "2B", "trust_remote_code": True}
    record = dict(wanted, outputs=convert.outputs_of(out))
    assert convert.stale(record, wanted, out) is None
    assert convert.stale(record, dict(wanted, source={"hub": "o/m", "revision": "e" * 40}), out) == "its source changed"
    assert convert.stale(record, dict(wanted, script={"commit": "f" * 40, "sha256": "d" * 64}), out) == "its script changed"
    assert convert.stale(None, wanted, tmp_path / "none") == "not converted yet"
    (out / "release" / "model_optim_rng.pt").write_bytes(b"xy")
    assert convert.stale(record, wanted, out) == "release/model_optim_rng.pt changed since it was converted"
