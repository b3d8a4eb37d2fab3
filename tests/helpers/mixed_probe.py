# mixed_probe.py MODE VSOCK_HOST VPORT TCP_PORT: a program that talks to a
# vsock service and does ordinary TCP work in the same process.  Run under
# the shim (VSOCK_HOST vsock-1.local) and without it as the TCP oracle
# (VSOCK_HOST 127.0.0.1, VPORT a TCP echo port); the bats test compares the
# two reports, which name no port or pid.  Every socket comes from Python's
# one socket() call site, so the vsock connects made first ("prime") are
# what once taught the shim to make the next sockets vsock from socket() on.
#
# MODE (each after two vsock connects, and two more from AF_INET6 sockets for
# the modes that make AF_INET6 ones; TCP_PORT is a TCP echo server):
#   asyncio_v6   asyncio.start_server on ::1, a client echoes through it
#   dualstack    socket.create_server(dualstack_ipv6=True), v4 and v6 clients
#   v6only       setsockopt(IPV6_V6ONLY, 0 and 1) on new AF_INET6 sockets
#   fork         socket() in the parent, fork, the child connects it by TCP
#   scm_rights   an unconnected socket sent over SCM_RIGHTS to a child,
#                which connects it by TCP
#   exec_plain   an unconnected socket inherited by a child without the shim
#                (LD_PRELOAD removed), which connects it by TCP
#   sigio        F_SETOWN + O_ASYNC before a non-blocking connect to TCP
#   epoll_sets   the socket in 5 epoll sets and a dup of one, before a
#                non-blocking connect to TCP
#   shutdown     shutdown() of a listener wakes a thread blocked in accept
import array, errno, fcntl, os, select, signal, socket, subprocess, sys, threading, time
import echo_client
from echo_client import echo

mode, vhost, vport, tport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


def prime(n=2):
    echo_client.prime(vhost, vport, n)


def err_name(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def tcp_echo_through(s, tag):
    """Connect s (blocking) to the TCP echo server and echo tag."""
    s.connect(("127.0.0.1", tport))
    return echo(s, tag)


prime()
if mode in ("asyncio_v6", "dualstack", "v6only"):
    echo_client.prime(vhost, vport, 2, socket.AF_INET6)  # these make AF_INET6 sockets
if mode == "asyncio_v6":
    import asyncio

    async def handle(r, w):
        w.write(await r.readline())
        await w.drain()
        w.close()

    async def main():
        srv = await asyncio.start_server(handle, "::1", 0)
        port = srv.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection("::1", port)
        w.write(b"over ::1\n")
        line = await r.readline()
        w.close()
        srv.close()
        await srv.wait_closed()
        print("asyncio server on ::1:", line.decode().strip())

    try:
        asyncio.run(main())
    except OSError as e:
        print("asyncio server on ::1: error", err_name(e))
elif mode == "dualstack":
    try:
        srv = socket.create_server(("", 0), family=socket.AF_INET6, dualstack_ipv6=True)
        port = srv.getsockname()[1]
        for host in ("127.0.0.1", "::1"):
            c = socket.create_connection((host, port))
            a, _ = srv.accept()
            c.sendall(b"x")
            print("dualstack from", host, a.recv(1), a.getsockname()[0])
            a.close(), c.close()
    except (OSError, ValueError) as e:
        print("dualstack: error", e)
elif mode == "v6only":
    for value in (0, 1):
        s = socket.socket(socket.AF_INET6)
        try:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, value)
            print("IPV6_V6ONLY", value, "->", s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
        except OSError as e:
            print("IPV6_V6ONLY", value, "error", err_name(e))
        s.close()
elif mode == "fork":
    s = socket.socket()
    pid = os.fork()
    if pid == 0:
        try:
            print("child:", tcp_echo_through(s, "from the child"), flush=True)
        except OSError as e:
            print("child: error", err_name(e), flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
    s.close()
elif mode == "scm_rights":
    s = socket.socket()
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        a.close()
        msg, anc, _, _ = b.recvmsg(10, socket.CMSG_LEN(4))
        fds = array.array("i")
        fds.frombytes(anc[0][2][:4])
        got = socket.socket(fileno=fds[0])
        try:
            print("receiver:", tcp_echo_through(got, "passed socket"), flush=True)
        except OSError as e:
            print("receiver: error", err_name(e), flush=True)
        os._exit(0)
    b.close()
    a.sendmsg([b"fd"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [s.fileno()]))])
    s.close()
    os.waitpid(pid, 0)
elif mode == "exec_plain":
    s = socket.socket()
    s.set_inheritable(True)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    child = """
import errno, socket, sys
s = socket.socket(fileno=int(sys.argv[1]))
try:
    s.connect(("127.0.0.1", int(sys.argv[2])))
    s.sendall(b"plain child\\n")
    print("child without the shim:", s.recv(100).decode().strip())
except OSError as e:
    print("child without the shim: error", errno.errorcode.get(e.errno, e.errno))
except TypeError: # Python took the fd for the AF_VSOCK socket it is
    print("child without the shim: error: family", s.family.name)
"""
    out = subprocess.run([sys.executable, "-c", child, str(s.fileno()), str(tport)],
                         env=env, pass_fds=[s.fileno()], capture_output=True, text=True)
    print(out.stdout.strip() or out.stderr.strip())
elif mode == "sigio":
    got = []
    signal.signal(signal.SIGIO, lambda *a: got.append(1))
    s = socket.socket()
    fcntl.fcntl(s, fcntl.F_SETOWN, os.getpid())
    fcntl.fcntl(s, fcntl.F_SETFL, fcntl.fcntl(s, fcntl.F_GETFL) | os.O_ASYNC | os.O_NONBLOCK)
    s.connect_ex(("127.0.0.1", tport))
    deadline = time.monotonic() + 3
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    s.setblocking(True)
    print("SIGIO on connect:", bool(got), "echo:", echo(s, "async"))
elif mode == "epoll_sets":
    s = socket.socket()
    s.setblocking(False)
    eps = [select.epoll() for _ in range(5)]
    for ep in eps:
        ep.register(s.fileno(), select.EPOLLOUT)
    dup = select.epoll.fromfd(os.dup(eps[0].fileno()))
    s.connect_ex(("127.0.0.1", tport))
    ready = sum(1 for ep in eps if ep.poll(3))
    print("epoll sets that saw the connect:", ready, "of 5; the dup'd epoll fd:",
          bool(dup.poll(1)))
    s.setblocking(True)
    print("echo:", echo(s, "epoll"))
elif mode == "shutdown":
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen()
    woken = []

    def waiter():
        try:
            l.accept()
            woken.append("accepted?")
        except OSError as e:
            woken.append(err_name(e))

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.3)
    try:
        l.shutdown(socket.SHUT_RDWR)
        print("shutdown of the listener: 0")
    except OSError as e:
        print("shutdown of the listener: error", err_name(e))
    t.join(3)
    print("blocked accept woken:", not t.is_alive(), woken)
    if t.is_alive():
        os._exit(1)
else:
    sys.exit("unknown mode " + mode)
