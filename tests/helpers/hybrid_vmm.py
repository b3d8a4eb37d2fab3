#!/usr/bin/env python3
"""hybrid_vmm.py: a stand-in for the host side of a Firecracker / Cloud
Hypervisor "hybrid vsock" device, for the vsockify tests.  Python 3 stdlib.

The protocol (Firecracker's docs/vsock.md; Cloud Hypervisor does the same):

  host -> guest port P   a host program connects to the Unix stream socket
                         UDS, sends "CONNECT P\\n" and reads one line
                         "OK <host-side port>\\n"; from then on the stream is
                         the connection to the guest's port P.  When nothing
                         listens on guest port P the VMM closes the stream
                         without "OK".
  guest -> host port P   the VMM connects to the Unix socket "<UDS>_P" (no
                         preamble); host software listens there.

Usage:
  hybrid_vmm.py --uds PATH [--port P=ADDR]... [--guest P=LISTEN]...
                [--mode MODE] [--reply TEXT]

  --uds PATH       listen here (a stale file is removed first)
  --port P=ADDR    what "CONNECT P" reaches ("the guest's service on P"):
                   tcp:HOST:PORT, unix:PATH or vsock:CID:PORT (VM only).
                   CONNECT to a port with no --port, or whose ADDR refuses,
                   is closed without OK (a guest with no listener there).
  --guest P=LISTEN play a guest dialling host port P: listen on LISTEN
                   (tcp:HOST:PORT or vsock:PORT, VM only) and relay every
                   accepted connection to a fresh connection to "<UDS>_P".
  --mode MODE      how host->guest CONNECTs are answered:
                     ok         "OK n\\n" in one write (default); n counts up
                                from 1073741824, like Firecracker
                     split      the OK line in two writes, 200 ms apart
                                ("OK 10" then "73741824\\n")
                     bytes      the OK line one byte a write, 50 ms apart
                     late       the OK line in one write, 600 ms after the
                                CONNECT line
                     with-data  dial the service first, wait (up to 5 s) for
                                its first bytes, then send "OK n\\n" plus
                                those bytes in ONE write
                     close      read the CONNECT line, close without OK
                     garbage    answer "HELLO\\n", then wait for the client
                                to close
                     junk       answer binary junk ending in "\\n", then wait
                     longline   send 1 MiB with no newline, then close
                     silent     never answer; keep the stream open until the
                                client closes it
                     reply      answer --reply TEXT (Python escapes, e.g.
                                'OK\\n' or 'OK 12x\\n'), then wait
  --reply TEXT     the answer for --mode reply

Relaying is byte-exact and keeps half-closes: EOF from one side becomes
shutdown(SHUT_WR) on the other; both sockets close once both directions are
done.  Prints "listening" on stdout (flushed) once every socket listens;
logs each CONNECT line (and each guest->host relay) on stderr.
"""

import argparse
import itertools
import os
import re
import signal
import socket
import stat
import sys
import threading
import time

FIRST_HOST_PORT = 1073741824
MAX_LINE = 64
_ports = itertools.count(FIRST_HOST_PORT)
_ports_lock = threading.Lock()


_log_lock = threading.Lock()


def log(*a):
    # One write per line, under a lock: print() from several threads can
    # interleave its pieces, and the tests count these lines.
    line = "hybrid_vmm: " + " ".join(str(x) for x in a) + "\n"
    with _log_lock:
        sys.stderr.write(line)
        sys.stderr.flush()


def next_host_port():
    with _ports_lock:
        return next(_ports)


def parse_addr(text, kinds):
    """tcp:HOST:PORT | unix:PATH | vsock:CID:PORT | vsock:PORT -> (family, sockaddr)."""
    kind, _, rest = text.partition(":")
    if kind not in kinds:
        raise ValueError("address kind must be one of %s: %r" % (", ".join(kinds), text))
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("tcp:HOST:PORT expected: %r" % text)
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        return fam, (host.strip("[]"), int(port))
    if kind == "unix":
        if not rest:
            raise ValueError("unix:PATH expected: %r" % text)
        return socket.AF_UNIX, rest
    # vsock
    parts = rest.split(":")
    if kinds.get("vsock") == "listen":
        if len(parts) != 1 or not parts[0].isdigit():
            raise ValueError("vsock:PORT expected: %r" % text)
        return socket.AF_VSOCK, (socket.VMADDR_CID_ANY, int(parts[0]))
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError("vsock:CID:PORT expected: %r" % text)
    return socket.AF_VSOCK, (int(parts[0]), int(parts[1]))


def parse_mapping(text, kinds):
    p, sep, addr = text.partition("=")
    if not sep or not p.isdigit():
        raise ValueError("P=ADDR expected: %r" % text)
    return int(p), parse_addr(addr, kinds)


def dial(fam, sa, timeout=10):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sa)
    except OSError:
        s.close()
        raise
    s.settimeout(None)
    return s


def pump(src, dst, what, done):
    """Copy src -> dst until EOF, then shutdown(dst, SHUT_WR)."""
    try:
        while True:
            try:
                d = src.recv(65536)
            except OSError as e:
                log(what, "recv:", e)
                d = b""
            if not d:
                break
            try:
                dst.sendall(d)
            except OSError as e:
                log(what, "send:", e)
                # the reader side is gone: stop the other side's writes too
                try:
                    src.shutdown(socket.SHUT_RD)
                except OSError:
                    pass
                break
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    finally:
        done.release()


def relay(a, b, what):
    """Relay a <-> b both ways, keep half-closes, close both at the end."""
    done = threading.Semaphore(0)
    threading.Thread(target=pump, args=(a, b, what + " >", done), daemon=True).start()
    threading.Thread(target=pump, args=(b, a, what + " <", done), daemon=True).start()
    done.acquire()
    done.acquire()
    a.close()
    b.close()


def read_line(c):
    """The CONNECT line, read a byte at a time so nothing after it is eaten."""
    buf = b""
    while len(buf) <= MAX_LINE:
        d = c.recv(1)
        if not d:
            return buf, False
        buf += d
        if d == b"\n":
            return buf, True
    return buf, False


def wait_close(c, limit=120):
    """Keep the stream open until the client closes it (or limit seconds)."""
    c.settimeout(limit)
    try:
        while c.recv(65536):
            pass
    except OSError:
        pass


def host_to_guest(c, args):
    try:
        line, complete = read_line(c)
        m = re.fullmatch(rb"CONNECT ([0-9]+)\n", line) if complete else None
        if not m:
            log("bad line", repr(line), "- closing")
            c.close()
            return
        port = int(m.group(1))
        log("got line: CONNECT %d" % port)
        mode = args.mode
        if mode == "close":
            log("mode close: closing without OK")
            c.close()
            return
        if mode == "silent":
            log("mode silent: no answer")
            wait_close(c, limit=3600)
            c.close()
            return
        if mode in ("garbage", "junk", "reply"):
            ans = {"garbage": b"HELLO\n",
                   "junk": bytes(range(256)) + b"\xff\x00\n",
                   "reply": args.reply_bytes}[mode]
            log("mode %s: answering %r" % (mode, ans[:40]))
            try:
                c.sendall(ans)
            except OSError as e:
                log("send:", e)
            wait_close(c)
            c.close()
            return
        if mode == "longline":
            log("mode longline: 1 MiB with no newline")
            try:
                c.sendall(b"O" + b"K" * (1 << 20))
            except OSError as e:
                log("longline send stopped:", e)
            c.close()
            return
        target = args.ports.get(port)
        if target is None:
            log("port %d is not mapped: closing without OK" % port)
            c.close()
            return
        try:
            g = dial(*target)
        except OSError as e:
            log("port %d: service %r: %s: closing without OK" % (port, target[1], e))
            c.close()
            return
        ok = b"OK %d\n" % next_host_port()
        if mode == "split":
            c.sendall(ok[:5])
            time.sleep(0.2)
            c.sendall(ok[5:])
        elif mode == "bytes":
            for i in range(len(ok)):
                c.sendall(ok[i:i + 1])
                time.sleep(0.05)
        elif mode == "late":
            time.sleep(0.6)
            c.sendall(ok)
        elif mode == "with-data":
            g.settimeout(5)
            try:
                first = g.recv(65536)
            except socket.timeout:
                first = b""
            g.settimeout(None)
            if not first:
                log("with-data: the service sent nothing in 5 s (or closed)")
            c.sendall(ok + first)
            log("with-data: sent %r and %d service bytes in one write" % (ok, len(first)))
        else:
            c.sendall(ok)
        log("answered %r" % ok)
        relay(c, g, "port %d" % port)
    except OSError as e:
        log("host->guest:", e)
        c.close()


def guest_to_host(c, port, args):
    path = "%s_%d" % (args.uds, port)
    try:
        u = dial(socket.AF_UNIX, path)
    except OSError as e:
        log("guest->host %d: %s: %s: closing" % (port, path, e))
        c.close()
        return
    log("guest->host %d: relaying to %s" % (port, path))
    relay(c, u, "guest %d" % port)


def accept_loop(l, handler, *extra):
    while True:
        try:
            c, _ = l.accept()
        except OSError as e:
            log("accept:", e)
            time.sleep(0.1)
            continue
        threading.Thread(target=handler, args=(c,) + extra, daemon=True).start()


def main():
    ap = argparse.ArgumentParser(
        usage="%(prog)s --uds PATH [--port P=ADDR]... [--guest P=LISTEN]... [--mode MODE]",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uds", required=True)
    ap.add_argument("--port", action="append", default=[])
    ap.add_argument("--guest", action="append", default=[])
    ap.add_argument("--mode", default="ok",
                    choices=["ok", "split", "bytes", "late", "with-data", "close", "garbage",
                             "junk", "longline", "silent", "reply"])
    ap.add_argument("--reply", default="")
    args = ap.parse_args()
    try:
        args.ports = dict(parse_mapping(p, {"tcp": 1, "unix": 1, "vsock": "dial"})
                          for p in args.port)
        guests = [parse_mapping(g, {"tcp": 1, "vsock": "listen"}) for g in args.guest]
    except ValueError as e:
        ap.error(str(e))
    args.reply_bytes = args.reply.encode().decode("unicode_escape").encode("latin-1")

    try:
        if stat.S_ISSOCK(os.lstat(args.uds).st_mode):
            os.unlink(args.uds)
    except FileNotFoundError:
        pass
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.bind(args.uds)
    u.listen(128)
    threading.Thread(target=accept_loop, args=(u, host_to_guest, args), daemon=True).start()
    for port, (fam, sa) in guests:
        l = socket.socket(fam, socket.SOCK_STREAM)
        if fam != socket.AF_VSOCK:
            l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        l.bind(sa)
        l.listen(128)
        threading.Thread(target=accept_loop, args=(l, guest_to_host, port, args),
                         daemon=True).start()
        log("guest port %d: listening on %r" % (port, sa))

    def bye(*_):
        try:
            os.unlink(args.uds)
        except OSError:
            pass
        os._exit(0)
    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGINT, bye)
    log("mode %s, uds %s, ports %s" % (args.mode, args.uds,
                                        {p: a[1] for p, a in args.ports.items()}))
    print("listening", flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
