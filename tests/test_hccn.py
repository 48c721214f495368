"""hccn_tool's outputs and /etc/hccn.conf parsed (captured text in tests/world/hccn.py), and the HCCL rank
table built from what was found or checked against it: the first pieces of multi-node readiness."""

from __future__ import annotations

import pytest

from npuenv.npu import hccn
from tests.world import hccn as captured


def test_device_ip_set_and_unset():
    assert hccn.parse_ip(captured.IP) == hccn.DeviceIp("10.10.100.10", "255.255.255.0")
    assert hccn.parse_ip(captured.IP_UNSET) is None
    assert hccn.parse_ip("") is None


def test_link_and_health():
    assert hccn.parse_link(captured.LINK_UP) == "UP" and hccn.parse_link(captured.LINK_DOWN) == "DOWN"
    assert hccn.parse_link("Link Status : up\n") == "UP"  # spacing and case as other drivers print them
    assert hccn.parse_net_health(captured.HEALTH_OK) == "Success"
    assert hccn.parse_net_health(captured.HEALTH_FAULT) == "Fault"
    assert hccn.parse_net_health("banner line\n") is None


@pytest.mark.parametrize("parse", [hccn.parse_ip, hccn.parse_link, hccn.parse_net_health, hccn.parse_ping])
def test_busy_is_told_apart_from_an_answer(parse):
    with pytest.raises(hccn.Busy):
        parse(captured.BUSY)


def test_ping_summary_loss_and_a_run_cut_short():
    assert hccn.parse_ping(captured.PING_OK) == hccn.Ping(3, 3, 0.0) and hccn.parse_ping(captured.PING_OK).ok
    lost = hccn.parse_ping(captured.PING_LOST)
    assert lost == hccn.Ping(3, 0, 100.0) and not lost.ok
    assert hccn.parse_ping(captured.PING_CUT_SHORT) == hccn.Ping(2, 1, 50.0)
    assert hccn.parse_ping("device 0 PING 10.0.0.1\n") is None


def test_hccn_conf_by_physical_device():
    conf = hccn.parse_hccn_conf(captured.HCCN_CONF + "# a comment\nnonsense\n")
    assert conf == {0: {"address": "10.10.100.10", "netmask": "255.255.255.0", "netdetect": "10.10.100.1",
                        "gateway": "10.10.100.1"},
                    1: {"address": "10.10.101.10", "netmask": "255.255.255.0"}}


SERVERS = [hccn.Server("192.168.0.1", ((0, "10.10.100.10"), (1, "10.10.101.10"))),
           hccn.Server("192.168.0.2", ((0, "10.10.100.20"), (1, "10.10.101.20")))]


def test_a_rank_table_numbers_ranks_server_by_server_with_strings():
    table = hccn.rank_table(SERVERS)
    assert table["version"] == "1.0" and table["status"] == "completed" and table["server_count"] == "2"
    assert [(s["server_id"], [(d["device_id"], d["device_ip"], d["rank_id"]) for d in s["device"]])
            for s in table["server_list"]] == [
        ("192.168.0.1", [("0", "10.10.100.10", "0"), ("1", "10.10.101.10", "1")]),
        ("192.168.0.2", [("0", "10.10.100.20", "2"), ("1", "10.10.101.20", "3")])]
    assert hccn.rank_table_problems(table, SERVERS) == []


def test_a_rank_table_that_does_not_match_the_devices_names_each_difference():
    table = hccn.rank_table(SERVERS)
    table["server_list"][0]["device"][1]["device_ip"] = "10.10.101.99"
    table["server_list"][1]["device"][0]["rank_id"] = "1"
    table["server_list"].append({"server_id": "192.168.0.3", "device": []})
    assert hccn.rank_table_problems(table, SERVERS) == [
        "server_count '2' but 3 servers listed",
        "server 192.168.0.1 device 1: device_ip 10.10.101.99 in the table, 10.10.101.10 on the device",
        "server 192.168.0.3: in the rank table, not among the nodes",
        "rank ids are not 0..3, each once: [0, 1, 1, 3]"]
    assert hccn.rank_table_problems({"nope": 1}, SERVERS) == ["not a rank table: no server_list"]
    missing = hccn.rank_table([SERVERS[0]])
    assert hccn.rank_table_problems(missing, SERVERS) == ["server 192.168.0.2: not in the rank table"]
