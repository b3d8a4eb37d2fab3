# dial.py HOST PORT [MESSAGE [N]]: a plain TCP client, to run under the shim.
# Connects to HOST's first getaddrinfo answer (a numeric IPv6 HOST gets an
# AF_INET6 socket, so "::ffff:10.0.2.2" dials the IPv4-mapped form) and prints
#   peer ADDR PORT      getpeername()
#   local ADDR          getsockname(), address only
#   got TEXT            what the server sent until EOF, or until N bytes
#                       (newlines as spaces), after sending MESSAGE if given
#                       ("hex:0a0b..." for bytes).
# A failing connect prints "error ERRNO_NAME" (a failed lookup "gaierror N")
# and exits 1.
import errno, socket, sys

host, port = sys.argv[1], int(sys.argv[2])
try:
    fam, _, _, _, sa = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
except socket.gaierror as e:
    print("gaierror", e.errno, flush=True)
    sys.exit(1)
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(30)
try:
    s.connect(sa)
except OSError as e:
    print("error", errno.errorcode.get(e.errno, e.errno), flush=True)
    sys.exit(1)
peer = s.getpeername()
print("peer", peer[0], peer[1])
print("local", s.getsockname()[0])
if len(sys.argv) > 3:
    m = sys.argv[3]
    s.sendall(bytes.fromhex(m[4:]) if m.startswith("hex:") else m.encode())
limit = int(sys.argv[4]) if len(sys.argv) > 4 else None
buf = b""
while limit is None or len(buf) < limit:
    try:
        d = s.recv(65536 if limit is None else limit - len(buf))
    except OSError as e:
        print("recv error", errno.errorcode.get(e.errno, e.errno))
        break
    if not d:
        break
    buf += d
print("got", " ".join(buf.decode(errors="replace").split()), flush=True)
