"""fleet.diff's comparison: only what differs, grouped, the majority against the outliers, or against a
reference (the lock). Pure: snapshots are data here; collecting them from nodes comes with fleet.diff."""

from __future__ import annotations

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
