"""The fleet's hosts file: hosts.yaml or a plain list of SSH aliases, with every problem named by line."""

from __future__ import annotations

import pytest

from npuenv.errors import UsageError
from npuenv.fleet.hosts import Node, read_hosts


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_yaml_file_with_defaults_and_per_node_values(tmp_path):
    path = write(tmp_path, "hosts.yaml", """\
defaults: {user: ma-user, root: /home/ma-user/work/alice}
nodes:
  node1: {host: 192.168.0.1}
  node2: {host: 192.168.0.2, port: 2222, root: /home/ma-user/work/bob}
  box3:
""")
    assert read_hosts(path) == [Node("node1", "192.168.0.1", "ma-user", None, "/home/ma-user/work/alice"),
                                Node("node2", "192.168.0.2", "ma-user", 2222, "/home/ma-user/work/bob"),
                                Node("box3", "box3", "ma-user", None, "/home/ma-user/work/alice")]


def test_aliases_as_a_yaml_list_or_a_plain_file(tmp_path):
    listed = read_hosts(write(tmp_path, "h.yml", "nodes: [box1, box2]\n"))
    plain = read_hosts(write(tmp_path, "hosts", "# the training nodes\nbox1\n\nbox2  # the second\n"))
    assert listed == plain == [Node("box1", "box1"), Node("box2", "box2")]


def test_every_problem_is_named_with_its_line(tmp_path):
    path = write(tmp_path, "hosts.yaml", """\
nodes:
  node1: {host: 192.168.0.1, port: 99999}
  node2: {host: "bad host", root: relative/path}
  node3: {hots: x}
extra: 1
""")
    with pytest.raises(UsageError) as info:
        read_hosts(path)
    message = info.value.message
    assert message.startswith("5 problems in the hosts file:")
    for expected in ("hosts.yaml:2 nodes.node1.port: expected a port number 1–65535, got 99999",
                     "hosts.yaml:3 nodes.node2.host: 'bad host' is not a host name, address or SSH alias",
                     "hosts.yaml:3 nodes.node2.root: 'relative/path': give the node's workspace as an absolute path",
                     "hosts.yaml:4 nodes.node3.hots: unknown key 'hots': did you mean 'host'?",
                     "hosts.yaml:5 extra: unknown key 'extra'"):
        assert expected in message, message


def test_a_repeated_node_an_empty_file_and_a_missing_file(tmp_path):
    with pytest.raises(UsageError, match="the node 'box1' is named 2 times"):
        read_hosts(write(tmp_path, "hosts", "box1\nbox1\n"))
    with pytest.raises(UsageError, match="names no node"):
        read_hosts(write(tmp_path, "empty", "# nothing\n"))
    with pytest.raises(UsageError, match="cannot read the hosts file"):
        read_hosts(tmp_path / "nowhere.yaml")
