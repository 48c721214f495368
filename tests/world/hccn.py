"""hccn_tool's output formats and /etc/hccn.conf, as captured text (the formats of Ascend's hccn_tool
reference), for the pure parsers in npuenv.npu.hccn. Beside the npu-smi captures
(npu.py). What a real 910B prints around these lines (banners, blank lines) varies by driver version; the
parsers ignore what they do not know."""

IP = "ipaddr:10.10.100.10\nnetmask:255.255.255.0\n"
IP_UNSET = "Get ipconf failed, because no ip was preset there!\n"
LINK_UP = "link status: UP\n"
LINK_DOWN = "link status: DOWN\n"
HEALTH_OK = "net health status: Success\n"
HEALTH_FAULT = "net health status: Fault\n"
BUSY = "hccn_tool is busy, please try again\n"
GATEWAY = "default gateway:10.10.100.1, Iface:eth0\n"
PING_OK = """\
device 0 PING 10.10.101.10
recv seq=0,time=0.067000ms
recv seq=1,time=0.051000ms
recv seq=2,time=0.049000ms
3 packets transmitted, 3 received, 0.00% packet loss
"""
PING_LOST = """\
device 0 PING 10.10.101.99
recv time out seq=0
recv time out seq=1
recv time out seq=2
3 packets transmitted, 0 received, 100.00% packet loss
"""
PING_CUT_SHORT = "device 0 PING 10.10.101.10\nrecv seq=0,time=0.067000ms\nrecv time out seq=1\n"
HCCN_CONF = """\
address_0=10.10.100.10
netmask_0=255.255.255.0
netdetect_0=10.10.100.1
gateway_0=10.10.100.1
address_1=10.10.101.10
netmask_1=255.255.255.0
"""
