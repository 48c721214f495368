"""fleet.diff's comparison: only what differs, grouped, the majority against the outliers, or against a
reference (the lock). Pure: snapshots are data here; collecting them from nodes comes with fleet.diff."""

from __future__ import annotations

from pathlib import Path

from npuenv.fleet.diff import MISSING, differences, flatten, grouped

NODE = {"repos": {"mindspeed": "3f09d67", "megatron": "baf94af"}, "packages": {"torch": "2.1.0", "numpy": "1.26.4"},
        "cann": {"version": "8.0.RC3"}, "hccl": {"HCCL_CONNECT_TIMEOUT": "1200"}}


def node(**changes) -> dict:
    import copy

    data = copy.deepcopy(NODE)
    for dotted, value in changes.items():
        category, key = dotted.split("__")
        if value is MISSING:
            data[category].pop(key)
        else:
            data[category][key] = value
    return data


def test_flatten_names_every_leaf_by_its_path():
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": {}}) == {"a.b": 1, "a.c": [1, 2], "d": {}}


def test_identical_nodes_have_no_differences():
    assert differences({f"n{i}": node() for i in range(4)}) == []


def test_the_outliers_are_named_against_the_majority():
    snapshots = {"n1": node(), "n2": node(repos__mindspeed="1111111"), "n3": node(), "n4": node(packages__numpy=MISSING),
                 "n5": node(cann__version="8.0.RC2")}
    found = differences(snapshots)
    assert [(d.key, d.expected, d.outliers) for d in found] == [
        ("cann.version", "8.0.RC3", {"n5": "8.0.RC2"}),
        ("packages.numpy", "1.26.4", {"n4": MISSING}),
        ("repos.mindspeed", "3f09d67", {"n2": "1111111"})]
    assert found[0].holders == ("n1", "n2", "n3", "n4")
    assert list(grouped(found)) == ["cann", "packages", "repos"]


def test_a_tie_has_no_majority_and_every_node_is_shown():
    [tie] = differences({"a": node(), "b": node(cann__version="8.0.RC2")})
    assert tie.expected is None and tie.outliers == {"a": "8.0.RC3", "b": "8.0.RC2"}


def test_against_a_reference_every_node_that_differs_from_it_is_named():
    lock = {"repos": {"mindspeed": "3f09d67"}, "packages": {"torch": "2.1.0", "six": "1.16.0"}}
    found = differences({"n1": node(), "n2": node(packages__torch="2.2.0")}, reference=lock)
    by_key = {d.key: d for d in found}
    assert by_key["packages.torch"].outliers == {"n2": "2.2.0"} and by_key["packages.torch"].reference
    assert by_key["packages.six"].outliers == {"n1": MISSING, "n2": MISSING}
    assert "repos.megatron" not in by_key  # not in the reference, and the nodes agree on it


def test_what_a_reference_does_not_pin_is_compared_by_majority_and_node_facts_not_at_all():
    lock = {"packages": {"torch": "2.1.0"}}
    snaps = {n: {**node(), "node": {"hostname": n}} for n in ("n1", "n2", "n3")}
    snaps["n3"] = {**node(cann__version="8.0.RC2"), "node": {"hostname": "n3"}}
    found = differences(snaps, reference=lock)
    assert [(d.key, d.expected, d.outliers, d.reference) for d in found] == [
        ("cann.version", "8.0.RC3", {"n3": "8.0.RC2"}, False)]


def test_a_lock_is_compared_in_the_snapshots_shape_and_only_what_it_pins(tmp_path):
    """fleet.diff --lock: the lock's repos, patches, wheels (for the nodes' arch) and packages against each
    node; a package the lock does not name (a build) is left to the majority."""
    from npuenv import lockfile
    from npuenv.fleet.compare import compare
    from npuenv.fleet.remote import Outcome

    uv_text = ('version = 1\n\n[[package]]\nname = "torch"\nversion = "2.1.0"\n\n'
               '[[package]]\nname = "generated"\nversion = "0"\nsource = { virtual = "." }\n')
    data = {"spec": {"name": "s", "file": "s.yaml", "sha256": "a" * 64}, "uv": {"arches": ["aarch64"]},
            "repos": {"mindspeed": {"commit": "3f09d67"}}, "patches": {"p": {"repo": "mindspeed", "sha256": "b" * 64}},
            "wheels": {"torch_npu": {"aarch64": {"filename": "t.whl", "sha256": "c" * 64},
                                     "x86_64": {"filename": "u.whl", "sha256": "d" * 64}}}}
    lock = lockfile.write(tmp_path / "s.yaml", data, uv_text)

    def snap(commit: str, wheel: str, torch: str) -> dict:
        return {"workspace": {"spec": {"name": "s", "sha256": "a" * 64}, "repos": {"mindspeed": commit},
                              "patches": {"p": {"sha256": "b" * 64, "applied": True}}, "wheels": {"torch_npu": wheel}},
                "target": {"packages": {"torch": torch, "apex": "0.1"}}, "system": {"arch": "aarch64"}}

    outcomes = [Outcome("n1", "n1", "ok", 0.1, 0, data=snap("3f09d67", "c" * 64, "2.1.0")),
                Outcome("n2", "n2", "ok", 0.1, 0, data=snap("1111111", "c" * 64, "2.1.0")),
                Outcome("n3", "n3", "ok", 0.1, 0, data=snap("1111111", "d" * 64, "2.2.0"))]
    report = compare(outcomes, lockfile.read(tmp_path / "s.yaml"), against=str(lock.path))
    assert [(d.key, d.expected, d.outliers, d.reference) for d in report.found] == [
        ("target.packages.torch", "2.1.0", {"n3": "2.2.0"}, True),
        ("workspace.repos.mindspeed", "3f09d67", {"n2": "1111111", "n3": "1111111"}, True),  # the lock, not the majority
        ("workspace.wheels.torch_npu", "c" * 64, {"n3": "d" * 64}, True)]


def test_a_builds_record_digest_ignores_where_the_venv_is_but_not_what_was_built(tmp_path):
    from npuenv.steps.env import build_records

    def venv(name: str, root: str, so_hash: str) -> Path:
        info = tmp_path / name / "lib" / "python3.10" / "site-packages" / "apex-0.1.dist-info"
        info.mkdir(parents=True)
        (info / "RECORD").write_text(
            f"apex/_C.so,sha256={so_hash},10\napex-0.1.dist-info/direct_url.json,sha256={root},99\n"
            f"../../../bin/apex-tool,sha256={root},50\n__editable__.apex.pth,sha256={root},9\n"
            "apex-0.1.dist-info/RECORD,,\n")
        return tmp_path / name

    one, two, other = venv("a", "AAA", "X"), venv("b", "BBB", "X"), venv("c", "AAA", "Y")
    assert build_records(one) == build_records(two) != build_records(other)


def test_what_a_spec_build_installed_is_compared_by_its_key_while_it_is_still_installed(tmp_path):
    """Compiled on each node, one build differs in its bytes (compilers write the source's path into the
    library), so nodes compare the build's content key instead, as long as the package is the cached wheel
    the build installed: the installer's direct_url.json names it (uv writes the '+' as is, pip as %2B)."""
    import json
    from types import SimpleNamespace

    from npuenv.fleet.snapshot import built_here
    from npuenv.state import State

    info = tmp_path / "venv" / "lib" / "python3.10" / "site-packages" / "apex-0.1+ascend.dist-info"
    info.mkdir(parents=True)
    key = "a3a9f7f92e65cd35e3ae"
    wheel = tmp_path / "wheels" / "built" / "apex" / key / "apex-0.1+ascend-cp310-cp310-linux_x86_64.whl"
    state = State(tmp_path / "state.json")
    state.save_step("build:apex", "f", {"dist": "Apex", "key": key, "dist_info": str(info), "wheel": str(wheel)}, 1.0)
    state.save_step("build:decord", "f", {"dist": "decord", "key": "883d21a538961db96e06",
                                          "dist_info": str(tmp_path / "gone.dist-info"), "wheel": str(wheel)}, 1.0)
    ctx = SimpleNamespace(layout=SimpleNamespace(state=state.path),
                          spec=SimpleNamespace(builds={"apex": None, "decord": None}))

    for url in ("file://" + str(wheel), wheel.as_uri()):
        (info / "direct_url.json").write_text(json.dumps({"url": url, "archive_info": {}}))
        assert built_here(ctx) == {"apex": f"built {key}"}, url  # decord is no longer installed
    (info / "direct_url.json").write_text(json.dumps({"url": "https://files.example/" + wheel.name}))
    assert built_here(ctx) == {}  # replaced by another apex: its RECORD is compared again
    (info / "direct_url.json").write_text("{not json")
    assert built_here(ctx) == {}
