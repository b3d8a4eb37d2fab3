# echo_client.py: what the oracle-and-shim probes (early_client.py,
# mixed_probe.py) share: one echo exchange, and "prime" connects to the
# vsock echo service, each from Python's one socket() call site.
import socket


def echo(s, tag):
    s.sendall(tag.encode() + b"\n")
    buf = b""
    while not buf.endswith(b"\n"):
        d = s.recv(100)
        if not d:
            break
        buf += d
    return buf.decode().strip()


def prime(vhost, vport, n):
    for i in range(n):
        s = socket.socket()
        s.connect((vhost, vport))
        assert echo(s, "prime%d" % i) == "prime%d" % i
        s.close()
