#!/usr/bin/env python3
"""dns_server.py ADDR PORT NAME=IPV4...: a tiny authoritative DNS server
over UDP for the tests.  Answers A for the names given, NODATA for their
other types, NXDOMAIN for every other name, and prints "query NAME TYPE"
for each query it gets (so a test can see which names reached DNS)."""
import socket
import struct
import sys

addr, port = sys.argv[1], int(sys.argv[2])
names = dict(a.split("=", 1) for a in sys.argv[3:])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, port))
print("listening", flush=True)
while True:
    q, peer = s.recvfrom(4096)
    if len(q) < 12:
        continue
    qid, flags, qd = struct.unpack("!HHH", q[:6])
    off, labels = 12, []
    while off < len(q) and q[off]:
        n = q[off]
        labels.append(q[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n
    off += 1
    qtype = struct.unpack("!H", q[off:off + 2])[0]
    qend = off + 4
    name = ".".join(labels).lower()
    print("query", name, qtype, flush=True)
    ip = names.get(name)
    rcode = 0 if ip else 3
    ans = b""
    if ip and qtype == 1:
        ans = struct.pack("!HHHIH", 0xC00C, 1, 1, 30, 4) + socket.inet_aton(ip)
    head = struct.pack("!HHHHHH", qid, 0x8580 | (flags & 0x0100) | rcode, 1,
                       1 if ans else 0, 0, 0)
    s.sendto(head + q[12:qend] + ans, peer)
