# early_client.py MODE VSOCK_HOST VPORT TCP_PORT: one program, run under the
# shim (VSOCK_HOST vsock-1.local) and without it as the TCP oracle
# (VSOCK_HOST 127.0.0.1, VPORT a TCP echo port).  Every socket comes from
# the same socket() call site (Python's), as in most programs, so after
# "prime" connects the shim makes the following sockets vsock from the
# start.  Prints a report; the bats test compares shim and oracle reports.
#
# MODE:
#   alternate  12 connects, vsock and TCP in a pattern that makes early
#              sockets connect to TCP; reports each one's names and echo
#   options    options set before connect, read back before and after a
#              connect to TCP, and a bind to 127.0.0.1 first
#   refused    a connect refused, then the same socket connects to TCP
#   listen     sockets from the primed site bind and listen (TCP and vsock)
import socket, sys
import echo_client
from echo_client import echo

mode, vhost, vport, tport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
under_shim = vhost != "127.0.0.1"


def fam_of(addr):
    return "v4" if ":" not in addr[0] else "v6"


def prime(n=3):
    echo_client.prime(vhost, vport, n)


def show_local(s):
    """The local name as TCP shows it; the port only when unbound (0)."""
    a = s.getsockname()
    return "%s:%s" % (a[0], a[1] if a[1] == 0 else "N")


if mode == "alternate":
    prime()
    pattern = "vvtvttvvtvvt"
    for i, k in enumerate(pattern):
        s = socket.socket()
        before = show_local(s)
        if k == "v":
            s.connect((vhost, vport))
            peer = "vsock" if under_shim else "vsock"
        else:
            s.connect(("127.0.0.1", tport))
            peer = "127.0.0.1:%d" % s.getpeername()[1]
        print(i, k, "before", before, "peer", peer, "local-fam", fam_of(s.getsockname()),
              "echo", echo(s, "m%d" % i))
        s.close()

elif mode == "options":
    prime()
    opts = [
        (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
        (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 33),
        (socket.SOL_SOCKET, socket.SO_SNDBUF, 65536),
        (socket.IPPROTO_IP, socket.IP_TOS, 0x10),
    ]
    names = {
        "nodelay": (socket.IPPROTO_TCP, socket.TCP_NODELAY),
        "keepalive": (socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        "keepidle": (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        "sndbuf": (socket.SOL_SOCKET, socket.SO_SNDBUF),
        "rcvbuf": (socket.SOL_SOCKET, socket.SO_RCVBUF),
        "tos": (socket.IPPROTO_IP, socket.IP_TOS),
        "type": (socket.SOL_SOCKET, socket.SO_TYPE),
        "domain": (socket.SOL_SOCKET, socket.SO_DOMAIN),
        "protocol": (socket.SOL_SOCKET, socket.SO_PROTOCOL),
        "error": (socket.SOL_SOCKET, socket.SO_ERROR),
        "acceptconn": (socket.SOL_SOCKET, socket.SO_ACCEPTCONN),
        "broadcast": (socket.SOL_SOCKET, socket.SO_BROADCAST),
    }

    def report(s, when):
        print(when, " ".join("%s=%d" % (k, s.getsockopt(*v)) for k, v in names.items()))

    # Untouched: the defaults of a fresh TCP socket.
    s = socket.socket()
    report(s, "fresh")
    print("fresh-local", show_local(s))
    s.close()
    # Set before the connect, read before and after it (to TCP).
    s = socket.socket()
    for lvl, opt, val in opts:
        s.setsockopt(lvl, opt, val)
    report(s, "set")
    s.connect(("127.0.0.1", tport))
    report(s, "connected")
    print("echo", echo(s, "o1"))
    s.close()
    # An option vsock could not hold (SO_BROADCAST), then a connect.  (Each
    # case primes again: a socket that became TCP made the site cold.)
    prime(2)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    report(s, "broadcast")
    s.connect(("127.0.0.1", tport))
    print("echo", echo(s, "o2"))
    s.close()
    # A source address bound before the connect.
    prime(2)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print("bound", s.getsockname()[0])
    s.connect(("127.0.0.1", tport))
    print("bound-connected", s.getsockname()[0], "echo", echo(s, "o3"))
    s.close()
    # IPv6 socket, v6-only, to ::1 is refused or not as TCP says.
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    print("v6only", s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY), show_local(s))
    s.close()

elif mode == "refused":
    prime()
    s = socket.socket()
    try:
        s.connect((vhost, vport + 5))
        print("first connect: connected?!")
    except OSError as e:
        print("first connect:", e.__class__.__name__, e.errno)
    print("error after", s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
    s.connect(("127.0.0.1", tport))
    print("second connect: echo", echo(s, "r1"), "peer", s.getpeername()[1] == tport)
    s.close()

elif mode == "listen":
    prime()
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", 0))
    l.listen(5)
    c = socket.socket()
    c.connect(l.getsockname())
    a, _ = l.accept()
    c.sendall(b"x")
    print("tcp listener:", a.recv(1), l.getsockname()[0])
    for s in (a, c, l):
        s.close()
    # An unbound socket that listens gets an ephemeral TCP port.
    l = socket.socket()
    l.listen(1)
    print("autobound listener:", l.getsockname()[0], l.getsockname()[1] > 0)
    l.close()
elif mode == "epoll":
    # Registered in epoll before a non-blocking connect (edge-triggered,
    # then one-shot re-armed after the connect), as reactors do.
    import select
    prime()
    for flags, name in ((select.EPOLLET, "et"), (select.EPOLLONESHOT, "oneshot")):
        for label, dest in (("ours", (vhost, vport)), ("tcp", ("127.0.0.1", tport))):
            ep = select.epoll()
            s = socket.socket()
            s.setblocking(False)
            ep.register(s.fileno(), select.EPOLLIN | select.EPOLLOUT | flags)
            try:
                s.connect(dest)
            except BlockingIOError:
                pass
            if flags == select.EPOLLONESHOT:
                ep.modify(s.fileno(), select.EPOLLOUT | flags)
            connected = False
            for _ in range(50):
                for fd, ev in ep.poll(2):
                    if ev & select.EPOLLOUT and s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                        try:
                            s.getpeername()
                            connected = True
                        except OSError:
                            pass
                if connected:
                    break
                if flags == select.EPOLLONESHOT:
                    ep.modify(s.fileno(), select.EPOLLOUT | flags)
            s.setblocking(True)
            print(name, label, "connected", connected,
                  "echo", echo(s, "e-" + name) if connected else "-")
            s.close()
            ep.close()
            prime(2)

elif mode == "more":
    import struct
    # A TCP option, then SO_SNDTIMEO (which needs the swap), then a connect
    # to our address: the option must survive.
    prime()
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 5, 0))
    s.connect((vhost, vport))
    print("sndtimeo: echo", echo(s, "t1"), "nodelay",
          s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
          "sndtimeo", struct.unpack("ll", s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16)))
    s.close()
    # A dup made before a connect to TCP: both numbers are the one socket.
    prime(2)
    s = socket.socket()
    d = s.dup()
    s.connect(("127.0.0.1", tport))
    d.sendall(b"dup\n")
    print("dup: reply on the other number", s.recv(10), "peer", d.getpeername()[1] == tport)
    s.close()
    d.close()

elif mode == "exec":
    # Unconnected sockets inherited across exec: the new program connects
    # one to TCP and one to our address.
    import os
    prime()
    a, b = socket.socket(), socket.socket()
    for s in (a, b):
        s.set_inheritable(True)
    os.execv(sys.executable, [sys.executable, __file__, "exec-child", vhost, str(vport),
                              str(tport), "%d,%d" % (a.fileno(), b.fileno())])

elif mode == "exec-child":
    fa, fb = (int(x) for x in sys.argv[5].split(","))
    a, b = socket.socket(fileno=fa), socket.socket(fileno=fb)
    print("inherited", a.family.name, show_local(a), b.family.name, show_local(b))
    a.connect(("127.0.0.1", tport))
    print("to tcp: echo", echo(a, "x1"), "peer", a.getpeername()[1] == tport)
    b.connect((vhost, vport))
    print("to ours: echo", echo(b, "x2"), "local-fam", fam_of(b.getsockname()))
else:
    sys.exit("unknown mode " + mode)
print("done")
