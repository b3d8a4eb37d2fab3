# listen_shutdown.py LISTEN_HOST DIAL_HOST: shutdown() of a listener, as a
# server's stop path uses it to wake its accept threads.  Run without the
# shim on 127.0.0.1 (the TCP oracle) and under it on a fake address (a vsock
# listener); the bats test compares the two reports, which name no port.
#
#   fork       a fork child blocks in accept, the parent shuts the listener
#   SHUT_RDWR  two threads block in accept, the main thread shuts it; then
#   SHUT_RD    a later accept, a second shutdown, SO_ACCEPTCONN, poll
#   SHUT_WR    no effect on a listener: a client still gets accepted
#   bad how    shutdown(fd, 7)
import errno, os, select, socket, sys, threading, time

listen_host, dial_host = sys.argv[1], sys.argv[2]


def en(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def listener():
    l = socket.socket()
    l.bind((listen_host, 0))
    l.listen()
    return l


def shut(l, how):
    try:
        l.shutdown(how)
        return "0"
    except OSError as e:
        return en(e)


def accept_in_thread(l, out):
    def run():
        try:
            a, _ = l.accept()
            out.append("accepted")
            a.close()
        except OSError as e:
            out.append(en(e))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def outcome(t, out, secs=5):
    t.join(secs)
    return "still blocked" if t.is_alive() else out[0]


# A prefork server: the listener is shared with a child blocked in accept.
l = listener()
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    try:
        l.accept()
        msg = "accepted"
    except OSError as e:
        msg = en(e)
    os.write(w, msg.encode())
    os._exit(0)
os.close(w)
time.sleep(0.5)
print("fork: shutdown", shut(l, socket.SHUT_RDWR))
ready, _, _ = select.select([r], [], [], 5)
print("fork: the child's blocked accept:", os.read(r, 100).decode() if ready else "still blocked")
if not ready:
    os.kill(pid, 9)
os.waitpid(pid, 0)
l.close()

for how in ("SHUT_RDWR", "SHUT_RD"):
    l = listener()
    outs = [[], []]
    ts = [accept_in_thread(l, o) for o in outs]
    time.sleep(0.5)
    print(how + ": shutdown", shut(l, getattr(socket, how)))
    print(how + ": blocked accepts:", outcome(ts[0], outs[0]), outcome(ts[1], outs[1]))
    later = []
    print(how + ": a later accept:", outcome(accept_in_thread(l, later), later, 3))
    p = select.poll()
    p.register(l, select.POLLIN)
    print(how + ": poll(POLLIN) wakes:", bool(p.poll(1000)))
    print(how + ": SO_ACCEPTCONN", l.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    print(how + ": a second shutdown", shut(l, socket.SHUT_RDWR))
    l.setblocking(False)
    try:
        l.accept()
        print(how + ": a non-blocking accept: accepted")
    except OSError as e:
        print(how + ": a non-blocking accept:", en(e))
    l.close()

l = listener()
print("SHUT_WR: shutdown", shut(l, socket.SHUT_WR))
out = []
t = accept_in_thread(l, out)
time.sleep(0.3)
c = socket.create_connection((dial_host, l.getsockname()[1]), timeout=5)
print("SHUT_WR: a client is still accepted:", outcome(t, out))
print("SHUT_WR: SO_ACCEPTCONN", l.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
c.close()
print("bad how: shutdown", shut(l, 7))
l.close()
sys.stdout.flush()
os._exit(0)
