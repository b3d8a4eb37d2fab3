#!/usr/bin/env bats
# Shimmed fds keep translating across dup, fcntl, fork and exec, and stop
# when closed.

load ../lib/common

setup() {
	require_vm
	common_setup
	start_bg echo socat -d -d VSOCK-LISTEN:7200,fork,reuseaddr EXEC:cat
	wait_for_log echo "listening on"
}
teardown() { common_teardown; }

@test "dup, dup2, dup3 and fcntl(F_DUPFD) copies translate too" {
	run preload python3 - <<'PY'
import fcntl, os, socket
s = socket.create_connection(("vsock-1.local", 7200))
for how, fd in [("dup", os.dup(s.fileno())),
                ("dup2", os.dup2(s.fileno(), 50)),
                ("dup3", os.dup2(s.fileno(), 51, inheritable=False)),
                ("F_DUPFD", fcntl.fcntl(s.fileno(), fcntl.F_DUPFD, 60)),
                ("F_DUPFD_CLOEXEC", fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, 70))]:
    d = socket.socket(fileno=fd)
    print(how, d.family == socket.AF_INET, d.getpeername())
PY
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(grep -c "True ('127.128.0.1', 7200)" <<<"$output")" -eq 5 ]
}

@test "a closed fd number (close, close_range) is not translated when reused" {
	start_bg tcp socat TCP-LISTEN:7201,bind=127.0.0.1,fork,reuseaddr EXEC:cat
	wait_for_tcp_port 7201
	run preload python3 - <<'PY'
import os, socket
s = socket.create_connection(("vsock-1.local", 7200))
n = s.fileno(); s.close()
t = socket.socket(); assert t.fileno() == n, (t.fileno(), n)
t.connect(("127.0.0.1", 7201))
print("reused", t.getpeername(), t.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN))
# close and close_range must forget the number: a native vsock socket put
# there behind every hook's back (raw syscalls) must not be translated.
import ctypes, platform
libc = ctypes.CDLL(None, use_errno=True)
SYS_socket, SYS_dup3 = {"x86_64": (41, 292), "aarch64": (198, 24)}[platform.machine()]
def native_vsock_at(n):
    v = libc.syscall(SYS_socket, socket.AF_VSOCK, socket.SOCK_STREAM, 0)
    assert v >= 0 and libc.syscall(SYS_dup3, v, n, 0) == n
    os.close(v)
    return socket.socket(fileno=n)   # python asks getsockname for the family
u = socket.create_connection(("vsock-1.local", 7200))
os.dup2(u.fileno(), 90); os.close(90)
print("after close", native_vsock_at(90).family.name)
os.dup2(u.fileno(), 91); os.closerange(91, 96)   # close_range(2) in CPython
print("after close_range", native_vsock_at(91).family.name)
os.dup2(u.fileno(), 97)
print("still ours", socket.socket(fileno=97).family.name)
PY
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"reused ('127.0.0.1', 7201) 2"* ]]
	[[ $output == *"after close AF_VSOCK"* ]]
	[[ $output == *"after close_range AF_VSOCK"* ]]
	[[ $output == *"still ours AF_INET"* ]]
}

@test "O_NONBLOCK and FD_CLOEXEC survive the swap; the fd number stays" {
	run preload python3 - <<'PY'
import fcntl, os, socket
s = socket.socket(); s.setblocking(False); n = s.fileno()
os.set_inheritable(n, True)
try: s.connect(("vsock-1.local", 7200))
except BlockingIOError: pass
print("same fd", s.fileno() == n)
print("nonblock", bool(fcntl.fcntl(n, fcntl.F_GETFL) & os.O_NONBLOCK))
print("inheritable", os.get_inheritable(n))
b = socket.socket(); m = b.fileno()     # python sets CLOEXEC by default
b.connect(("vsock-1.local", 7200))
print("blocking cloexec", not os.get_inheritable(m), not (fcntl.fcntl(m, fcntl.F_GETFL) & os.O_NONBLOCK))
PY
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"same fd True"* ]]
	[[ $output == *"nonblock True"* ]]
	[[ $output == *"inheritable True"* ]]
	[[ $output == *"blocking cloexec True True"* ]]
}

@test "an inherited shimmed fd still translates in an exec'd child" {
	run preload python3 - <<'PY'
import socket, subprocess, sys
s = socket.create_connection(("vsock-1.local", 7200))
child = """
import socket, sys
fd = int(sys.argv[1])
c = socket.socket(fileno=fd)
print("child", c.family == socket.AF_INET, c.getpeername(), c.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN))
c.sendall(b"from child"); print("echo", c.recv(10))
"""
subprocess.run([sys.executable, "-c", child, str(s.fileno())], pass_fds=[s.fileno()], check=True)
PY
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"child True ('127.128.0.1', 7200) 2"* ]]
	[[ $output == *"echo b'from child'"* ]]
}

@test "a forked child keeps translating, in threads too" {
	run preload python3 - <<'PY'
import os, socket, threading
s = socket.create_connection(("vsock-1.local", 7200))
pid = os.fork()
if pid == 0:
    print("forked", s.getpeername(), flush=True); os._exit(0)
os.waitpid(pid, 0)
out = []
def worker():
    c = socket.create_connection(("vsock-1.local", 7200))
    c.sendall(b"t"); out.append((c.recv(1), c.getpeername()))
ts = [threading.Thread(target=worker) for _ in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
print("threads", len(out), all(o == (b"t", ("127.128.0.1", 7200)) for o in out))
PY
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"forked ('127.128.0.1', 7200)"* ]]
	[[ $output == *"threads 8 True"* ]]
}
