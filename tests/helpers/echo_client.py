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


def prime(vhost, vport, n, family=socket.AF_INET):
    """n connects from one socket() call site; the shim keys a site by its
    domain too, so an AF_INET6 program primes with AF_INET6 sockets (the
    oracle's IPv4 echo server is then reached as ::ffff:127.0.0.1)."""
    if family == socket.AF_INET6:
        vhost = socket.getaddrinfo(vhost, vport, socket.AF_INET6, socket.SOCK_STREAM,
                                   0, socket.AI_V4MAPPED)[0][4][0]
    for i in range(n):
        s = socket.socket(family)
        s.connect((vhost, vport))
        assert echo(s, "prime%d" % i) == "prime%d" % i
        s.close()
