# echo_server.py vsock|tcp PORT: a native (never shimmed) echo server on
# AF_VSOCK (any CID) or TCP 127.0.0.1; one thread, any number of
# connections, so thousands of short connections stay cheap.  Prints
# "listening" once ready.  Bytes a client is slow to read wait in a
# per-connection queue (and the connection stops reading meanwhile), so
# nothing is ever dropped under back-pressure.
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
pending = {}  # socket -> bytes not yet sent back
print("listening", fam, port, flush=True)


def drop(s):
    sel.unregister(s)
    pending.pop(s, None)
    s.close()


def flush(s):
    """Send what is queued; returns False once the connection is gone."""
    try:
        n = s.send(pending[s])
    except (BlockingIOError, InterruptedError):
        return True
    except OSError:
        drop(s)
        return False
    pending[s] = pending[s][n:]
    return True


while True:
    for key, events in sel.select():
        s = key.fileobj
        if s is l:
            try:
                c, _ = l.accept()
            except OSError:
                continue
            c.setblocking(False)
            pending[c] = b""
            sel.register(c, selectors.EVENT_READ)
            continue
        if events & selectors.EVENT_WRITE:
            if not flush(s):
                continue
        elif events & selectors.EVENT_READ:
            try:
                d = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                d = b""
            if not d:
                drop(s)
                continue
            pending[s] += d
            if not flush(s):
                continue
        # Read again only when everything read so far went back out.
        sel.modify(s, selectors.EVENT_WRITE if pending[s] else selectors.EVENT_READ)
