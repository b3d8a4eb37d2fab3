# echo_server.py vsock|tcp PORT: a native (never shimmed) echo server on
# AF_VSOCK (any CID) or TCP 127.0.0.1; one thread, any number of
# connections, so thousands of short connections stay cheap.  Prints
# "listening" once ready.
import selectors, socket, sys
fam, port = sys.argv[1], int(sys.argv[2])
if fam == "vsock":
    l = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    l.bind((socket.VMADDR_CID_ANY, port))
else:
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", port))
l.listen(512)
l.setblocking(False)
sel = selectors.DefaultSelector()
sel.register(l, selectors.EVENT_READ)
print("listening", fam, port, flush=True)
while True:
    for key, _ in sel.select():
        s = key.fileobj
        if s is l:
            try:
                c, _ = l.accept()
            except OSError:
                continue
            c.setblocking(False)
            sel.register(c, selectors.EVENT_READ)
            continue
        try:
            d = s.recv(65536)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            d = b""
        if d:
            try:
                s.send(d)
            except OSError:
                pass
        else:
            sel.unregister(s)
            s.close()
