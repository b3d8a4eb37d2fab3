#!/usr/bin/env bats
# Real server process models: listeners that bind every resolver answer,
# servers that spawn children (vfork, posix_spawn, Python subprocess), bursts
# beyond the listen backlog, epoll registered before connect (and nginx,
# which does that), and sockets passed over SCM_RIGHTS.  Wherever possible
# the same program runs over plain TCP (the oracle) beside the shim.  No
# timing assertions: `timeout` only bounds a hang.  Ports 9201..9299.

load ../lib/common

SERVERS=$ROOT/build/helpers/servers

setup() {
	require_vm
	common_setup
	need_helper servers
	# client.py ADDRS PORT N: N sequential connections; connection i tries
	# ADDRS[i % len] first, then the others; each sends a line and expects
	# "ok ...".  Prints ok=, fail=, fallback=.
	cat >"$TEST_TMP/client.py" <<'PY'
import socket, sys
addrs, port, n = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])
ok = fail = fallback = 0
for i in range(n):
    order = addrs[i % len(addrs):] + addrs[:i % len(addrs)]
    for j, a in enumerate(order):
        try:
            s = socket.create_connection((a, port), timeout=20)
        except OSError as e:
            print("connect", a, e)
            continue
        fallback += j > 0
        try:
            s.sendall(b"hi %d\n" % i)
            buf = b""
            while not buf.endswith(b"\n"):
                d = s.recv(100)
                if not d:
                    break
                buf += d
            if buf.startswith(b"ok"):
                ok += 1
            else:
                print("bad reply", i, buf)
                fail += 1
        except OSError as e:
            print("io", i, e)
            fail += 1
        s.close()
        break
    else:
        fail += 1
print("client ok=%d fail=%d fallback=%d" % (ok, fail, fallback))
PY
}
teardown() { common_teardown; }

# ---- 1. listeners that bind every resolver answer --------------------------

# aserver.py HOSTS PORT N: asyncio loop.create_server on HOSTS (one name, or
# a comma-separated list for the TCP oracle); serves N connections.
write_aserver() {
	cat >"$TEST_TMP/aserver.py" <<'PY'
import asyncio, errno, socket, sys
hosts, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
host = hosts.split(",") if "," in hosts else hosts
handled = 0
class P(asyncio.Protocol):
    def connection_made(self, t):
        self.t, self.buf = t, b""
        s = t.get_extra_info("socket")
        print("conn", s.family.name, "peer", t.get_extra_info("peername")[0],
              "local", t.get_extra_info("sockname")[0], flush=True)
    def data_received(self, d):
        global handled
        self.buf += d
        if b"\n" in self.buf:
            self.t.write(b"ok\n")
            self.t.close()
            handled += 1
            if handled == n:
                done.set()
async def main():
    global done
    done = asyncio.Event()
    srv = await asyncio.get_running_loop().create_server(P, host=host, port=port)
    print("sockets", len(srv.sockets))
    for s in srv.sockets:
        print("listener", s.family.name, s.getsockname()[:2])
    # the same address again, from this process: TCP says EADDRINUSE
    s0 = srv.sockets[0]
    fam0, addr0 = s0.family, s0.getsockname()[:2]
    t = socket.socket(fam0)
    try:
        t.bind(addr0); print("rebind ok")
    except OSError as e:
        print("rebind", errno.errorcode[e.errno])
    t.close()
    print("ready", flush=True)
    await asyncio.wait_for(done.wait(), 60)
    srv.close()
    await srv.wait_closed()
    # every listener closed: the port is free again (as on TCP)
    t = socket.socket(fam0)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        t.bind(addr0); t.listen(); print("after close bind ok")
    except OSError as e:
        print("after close bind", errno.errorcode[e.errno])
    t.close()
    print("done", flush=True)
asyncio.run(main())
PY
	cat >"$TEST_TMP/bind2.py" <<'PY'
import errno, socket, sys
port = int(sys.argv[3])
for fam, host in ((socket.AF_INET, sys.argv[1]), (socket.AF_INET6, sys.argv[2])):
    s = socket.socket(fam)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port)); s.listen(); print("second", fam.name, "bound")
    except OSError as e:
        print("second", fam.name, errno.errorcode[e.errno])
PY
}

@test "multi-bind: asyncio create_server on vsock-any.local binds both answers and serves, as over TCP" {
	write_aserver
	# the oracle: 127.0.0.1 and ::1 (this /etc/hosts has no ::1 localhost)
	start_bg tsrv timeout 90 python3 -u "$TEST_TMP/aserver.py" 127.0.0.1,::1 9202 20
	wait_for_log tsrv '^ready'
	run timeout 30 python3 "$TEST_TMP/bind2.py" 127.0.0.1 ::1 9202
	echo "tcp second process: $output"
	[[ $output == *"second AF_INET EADDRINUSE"*"second AF_INET6 EADDRINUSE"* ]]
	run timeout 60 python3 "$TEST_TMP/client.py" 127.0.0.1,::1 9202 20
	echo "tcp client: $output"
	[[ $output == *"client ok=20 fail=0"* ]]
	wait_for_log tsrv '^done'
	cat "$TEST_TMP/tsrv.log"
	grep -q '^sockets 2$' "$TEST_TMP/tsrv.log"
	grep -q '^rebind EADDRINUSE$' "$TEST_TMP/tsrv.log"
	grep -q '^after close bind ok$' "$TEST_TMP/tsrv.log"

	start_bg vsrv timeout 90 env LD_PRELOAD="$LIB" python3 -u "$TEST_TMP/aserver.py" vsock-any.local 9201 21
	wait_for_log vsrv '^ready'
	run timeout 30 env LD_PRELOAD="$LIB" python3 "$TEST_TMP/bind2.py" vsock-any.local vsock-any.local 9201
	echo "vsock second process: $output"
	[[ $output == *"second AF_INET EADDRINUSE"*"second AF_INET6 EADDRINUSE"* ]]
	# half to the IPv4 fake, half to the IPv6 fake of CID 1
	run timeout 60 env LD_PRELOAD="$LIB" python3 "$TEST_TMP/client.py" 127.128.0.1,100::7673:6f63:0:1 9201 20
	echo "vsock client: $output"
	[[ $output == *"client ok=20 fail=0"* ]]
	run timeout 30 socat -t 5 - VSOCK-CONNECT:1:9201 <<<"native"
	echo "native client: status=$status output=$output"
	[ "$output" = "ok" ]
	wait_for_log vsrv '^done'
	cat "$TEST_TMP/vsrv.log"
	grep -q '^sockets 2$' "$TEST_TMP/vsrv.log"
	grep -q "^listener AF_INET ('127.255.255.255', 9201)$" "$TEST_TMP/vsrv.log"
	grep -q "^listener AF_INET6 ('100::7673:6f63:ffff:ffff', 9201)$" "$TEST_TMP/vsrv.log"
	grep -q '^rebind EADDRINUSE$' "$TEST_TMP/vsrv.log"
	grep -q '^after close bind ok$' "$TEST_TMP/vsrv.log"
	# every connection (20 + the native one) accepted once, with fake names
	[ "$(grep -c '^conn ' "$TEST_TMP/vsrv.log")" -eq 21 ]
	[ -z "$(grep '^conn ' "$TEST_TMP/vsrv.log" |
		grep -Ev '^conn (AF_INET peer 127\.128\.0\.1 local 127\.128\.0\.1|AF_INET6 peer 100::7673:6f63:0:1 local 100::7673:6f63:0:1)$')" ]
}

# multibind_run NAME HOSTS PORT CLOSEIDX CLIENT_ADDRS: C server on every
# answer of HOSTS, 20 connections, listener CLOSEIDX closed half-way.
multibind_run() {
	local name=$1 hosts=$2 port=$3 closeidx=$4 addrs=$5
	start_bg "$name" timeout 90 env ${PRELOAD_LIB:+LD_PRELOAD=$PRELOAD_LIB} \
		"$SERVERS" multibind "$hosts" "$port" 20 "$closeidx"
	wait_for_log "$name" '^listening n='
	run timeout 60 env ${PRELOAD_LIB:+LD_PRELOAD=$PRELOAD_LIB} python3 "$TEST_TMP/client.py" "$addrs" "$port" 20
	echo "$name client: $output"
	wait_for_log "$name" '^total=' 30 || true
	echo "$name server:"; cat "$TEST_TMP/$name.log"
	[[ $output == *"client ok=20 fail=0"* ]]
	grep -q '^listening n=2$' "$TEST_TMP/$name.log"
	grep -q '^total=20 bad=0$' "$TEST_TMP/$name.log"
	grep -q "^closed idx=$closeidx$" "$TEST_TMP/$name.log"
	# the other listener served everything after the close
	grep -q "^count idx=$((1 - closeidx)) accepted=[0-9]* after_close=10$" "$TEST_TMP/$name.log"
	[ "$(grep -c 'MISMATCH\|^FAIL' "$TEST_TMP/$name.log")" -eq 0 ]
}

@test "multi-bind: a C server on every answer accepts each connection once, per-family names, survives closing either fd" {
	# oracle: TCP on 127.0.0.1 and ::1
	PRELOAD_LIB= multibind_run tmb 127.0.0.1,::1 9204 0 127.0.0.1,::1
	grep -q '^listener idx=0 family=AF_INET addr=127.0.0.1 port=9204$' "$TEST_TMP/tmb.log"
	grep -q '^listener idx=1 family=AF_INET6 addr=::1 port=9204$' "$TEST_TMP/tmb.log"
	grep -q '^still idx=1 family=AF_INET6 addr=::1 port=9204$' "$TEST_TMP/tmb.log"

	for closeidx in 0 1; do
		port=$((9203 + 2 * closeidx))
		PRELOAD_LIB=$LIB multibind_run "vmb$closeidx" vsock-any.local "$port" "$closeidx" \
			127.128.0.1,100::7673:6f63:0:1
		log=$TEST_TMP/vmb$closeidx.log
		grep -q "^listener idx=0 family=AF_INET addr=127.255.255.255 port=$port$" "$log"
		grep -q "^listener idx=1 family=AF_INET6 addr=100::7673:6f63:ffff:ffff port=$port$" "$log"
		grep -q "^still idx=$((1 - closeidx)) family=AF_INET" "$log"
		[ -z "$(grep '^accept ' "$log" |
			grep -Ev '^accept idx=(0 peer family=AF_INET addr=127\.128\.0\.1|1 peer family=AF_INET6 addr=100::7673:6f63:0:1) port=[0-9]+$')" ]
	done
}

# ---- 2. children spawned by a server must not change the parent's state ---

@test "spawn: python subprocess.run (vfork, close_range) after bind and after accept leaves accept/getpeername AF_INET" {
	cat >"$TEST_TMP/spawn.py" <<'PY'
import socket, subprocess, sys
bind, conn, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
D = socket.SO_DOMAIN
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((bind, port)); l.listen()
subprocess.run(["true"], check=True)
print("1 listener", l.getsockname(), l.getsockopt(socket.SOL_SOCKET, D))
c = socket.create_connection((conn, port))
a, addr = l.accept()
print("1 accept", addr[0])
print("1 accepted peer", a.getpeername()[0], "local", a.getsockname()[0], a.getsockopt(socket.SOL_SOCKET, D))
subprocess.run(["true"], check=True)
subprocess.run(["sh", "-c", "exit 0"], check=True, pass_fds=[a.fileno()])
print("2 accepted peer", a.getpeername()[0], "local", a.getsockname()[0], a.getsockopt(socket.SOL_SOCKET, D))
print("2 client peer", c.getpeername()[0], c.getsockopt(socket.SOL_SOCKET, D))
print("2 listener", l.getsockname(), l.getsockopt(socket.SOL_SOCKET, D))
c2 = socket.create_connection((conn, port))
a2, addr2 = l.accept()
print("2 accept", addr2[0])
c2.sendall(b"x"); print("data", a2.recv(1))
PY
	run timeout 60 python3 "$TEST_TMP/spawn.py" 0.0.0.0 127.0.0.1 9211
	echo "tcp: $output"
	[ "$status" -eq 0 ]
	tcp=$(sed -e 's/0\.0\.0\.0/LISTEN/g; s/127\.0\.0\.1/PEER/g; s/9211/PORT/g' <<<"$output")
	run timeout 60 env LD_PRELOAD="$LIB" python3 "$TEST_TMP/spawn.py" vsock-any.local vsock-1.local 9210
	echo "vsock: $output"
	[ "$status" -eq 0 ]
	vs=$(sed -e 's/127\.255\.255\.255/LISTEN/g; s/127\.128\.0\.1/PEER/g; s/9210/PORT/g' <<<"$output")
	diff <(echo "$tcp") <(echo "$vs")
}

@test "spawn: C vfork+close-all+_exit, vfork+close_range+exec, posix_spawn(addclose, adddup2) leave the parent's names AF_INET" {
	local i=0 mode failed=
	for mode in vfork vforkexec posix_spawn; do
		run timeout 60 "$SERVERS" spawn "$mode" 0.0.0.0 127.0.0.1 $((9215 + i))
		echo "tcp $mode: $output"
		[ "$status" -eq 0 ]
		tcp=$(sed -e 's/0\.0\.0\.0/LISTEN/g; s/127\.0\.0\.1/PEER/g; s/ port=[0-9]*//g' <<<"$output")
		run timeout 60 env LD_PRELOAD="$LIB" "$SERVERS" spawn "$mode" vsock-any.local vsock-1.local $((9212 + i))
		echo "vsock $mode: $output"
		vs=$(sed -e 's/127\.255\.255\.255/LISTEN/g; s/127\.128\.0\.1/PEER/g; s/ port=[0-9]*//g' <<<"$output")
		if [[ $status -ne 0 || $output != *"2 listener family=AF_INET addr=127.255.255.255 port=$((9212 + i))"* ]] ||
			! diff <(echo "$tcp") <(echo "$vs"); then
			failed+=" $mode"
		fi
		i=$((i + 1))
	done
	echo "failed:${failed:- none}"
	[ -z "$failed" ]
}

# ---- 3. bursts beyond the listen backlog -----------------------------------

@test "backlog: 16 client threads x 200 requests against ThreadingTCPServer(request_queue_size=5) lose nothing, as over TCP" {
	cat >"$TEST_TMP/bserver.py" <<'PY'
import socketserver, sys, time
host, port = sys.argv[1], int(sys.argv[2])
class H(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"ok " + self.rfile.readline())
class S(socketserver.ThreadingTCPServer):
    request_queue_size = 5
    allow_reuse_address = True
    daemon_threads = True
    def get_request(self):
        time.sleep(0.005)     # a busy accept loop: connections queue up
        return super().get_request()
srv = S((host, port), H)
print("listening", srv.server_address, flush=True)
srv.serve_forever()
PY
	cat >"$TEST_TMP/bclient.py" <<'PY'
import collections, errno, socket, sys, threading
host, port, nthreads, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
addr = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4]
lock = threading.Lock()
state = {"next": 0, "ok": 0}
errs = collections.Counter()
bar = threading.Barrier(nthreads)
def worker():
    bar.wait()
    while True:
        with lock:
            if state["next"] >= total:
                return
            i = state["next"]; state["next"] += 1
        s = socket.socket()
        try:
            s.connect(addr)
            s.sendall(b"%d\n" % i)
            buf = b""
            while not buf.endswith(b"\n"):
                d = s.recv(100)
                if not d:
                    raise EOFError
                buf += d
            assert buf == b"ok %d\n" % i, buf
            with lock: state["ok"] += 1
        except EOFError:
            with lock: errs["EOF"] += 1
        except OSError as e:
            with lock: errs[errno.errorcode.get(e.errno, str(e))] += 1
        finally:
            s.close()
ts = [threading.Thread(target=worker) for _ in range(nthreads)]
for t in ts: t.start()
for t in ts: t.join()
print("ok=%d errors=%s" % (state["ok"], dict(errs)))
PY
	start_bg tb timeout 200 python3 -u "$TEST_TMP/bserver.py" 127.0.0.1 9221
	wait_for_log tb '^listening'
	run timeout 120 python3 "$TEST_TMP/bclient.py" 127.0.0.1 9221 16 200
	echo "tcp: $output"
	[ "$output" = "ok=200 errors={}" ]

	start_bg vb timeout 200 env LD_PRELOAD="$LIB" python3 -u "$TEST_TMP/bserver.py" vsock-any.local 9220
	wait_for_log vb '^listening'
	run timeout 120 env LD_PRELOAD="$LIB" python3 "$TEST_TMP/bclient.py" vsock-1.local 9220 16 200
	echo "vsock: $output"
	[ "$output" = "ok=200 errors={}" ]
}

# ---- 4. epoll registered before connect ------------------------------------

@test "epoll: registered before connect (EPOLLET; EPOLLONESHOT re-armed with MOD) or before bind+listen sees the events, as over TCP" {
	start_echo techo tcp 9231
	start_echo vecho vsock 9230
	local mode failed=
	for mode in et oneshot; do
		run timeout 60 "$SERVERS" epoll "$mode" 127.0.0.1 9231
		echo "tcp $mode: $output"
		[ "$status" -eq 0 ]
		[[ $output == *$'\nok'* ]]
		run timeout 60 env LD_PRELOAD="$LIB" "$SERVERS" epoll "$mode" vsock-1.local 9230
		echo "vsock $mode: $output"
		if [[ $status -ne 0 || $output != *"connected peer family=AF_INET addr=127.128.0.1 port=9230"* ||
			$output != *"reply hello epoll"* || $output != *$'\nok'* ]]; then
			failed+=" $mode"
		fi
	done
	# a listener registered before bind+listen
	run timeout 60 "$SERVERS" epoll listen 127.0.0.1 9232 127.0.0.1
	echo "tcp listen: $output"
	[ "$status" -eq 0 ]
	run timeout 60 env LD_PRELOAD="$LIB" "$SERVERS" epoll listen vsock-any.local 9233 vsock-1.local
	echo "vsock listen: $output"
	if [[ $status -ne 0 || $output != *"accepted peer family=AF_INET addr=127.128.0.1 "* || $output != *$'\nok'* ]]; then
		failed+=" listen"
	fi
	echo "failed:${failed:- none}"
	[ -z "$failed" ]
}

@test "epoll: nginx reverse proxy under the shim (registers upstream sockets before connect) reaches a vsock backend" {
	# A missing nginx is a broken set-up, not a reason to pass.
	command -v nginx >/dev/null || { echo "nginx is not installed (tests/install-deps.sh installs nginx-light as root)" >&2; false; }
	mkdir -p "$TEST_TMP/www/tcp" "$TEST_TMP/run" "$TEST_TMP/ngtmp"
	echo "page from the vsock backend" >"$TEST_TMP/www/index.html"
	echo "page from the tcp backend" >"$TEST_TMP/www/tcp/index.html"
	cat >"$TEST_TMP/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
user root;
pid $TEST_TMP/run/nginx.pidfile;
error_log $TEST_TMP/error.log info;
events { worker_connections 64; }
http {
    access_log $TEST_TMP/access.log;
    client_body_temp_path $TEST_TMP/ngtmp/body;
    proxy_temp_path $TEST_TMP/ngtmp/proxy;
    fastcgi_temp_path $TEST_TMP/ngtmp/fastcgi;
    uwsgi_temp_path $TEST_TMP/ngtmp/uwsgi;
    scgi_temp_path $TEST_TMP/ngtmp/scgi;
    proxy_connect_timeout 10s;
    proxy_read_timeout 10s;
    server {
        listen 127.0.0.1:9240;
        location /tcp/ { proxy_pass http://127.0.0.1:9242; }
        location / { proxy_pass http://vsock-1.local:9241; }
    }
}
EOF
	cd "$TEST_TMP/www"
	start_bg vhttp env LD_PRELOAD="$LIB" python3 -u -m http.server --bind vsock-any.local 9241
	start_bg thttp python3 -u -m http.server --bind 127.0.0.1 9242
	cd - >/dev/null
	wait_for_log vhttp "Serving HTTP"
	wait_for_log thttp "Serving HTTP"
	start_bg nginx env LD_PRELOAD="$LIB" nginx -p "$TEST_TMP" -c "$TEST_TMP/nginx.conf" -e "$TEST_TMP/error.log"
	wait_for_tcp_port 9240
	# the oracle: the same nginx, proxying to a TCP backend
	run timeout 30 curl -sS --max-time 25 http://127.0.0.1:9240/tcp/
	echo "tcp: $output"
	[ "$output" = "page from the tcp backend" ]
	run timeout 30 curl -sS --max-time 25 http://127.0.0.1:9240/
	echo "vsock: $output"
	cat "$TEST_TMP/error.log" || true
	[ "$output" = "page from the vsock backend" ]
	grep -E '^127\.128\.0\.1 - - .*"GET / HTTP/1\.0" 200' "$TEST_TMP/vhttp.log"
}

# ---- 5. fds arriving over SCM_RIGHTS ---------------------------------------

@test "SCM_RIGHTS: accepted and connected sockets passed to another shimmed process (no exec) read back AF_INET names, as over TCP" {
	cat >"$TEST_TMP/recv.py" <<'PY'
import socket, sys
port = int(sys.argv[2])
u = socket.socket(socket.AF_UNIX)
u.bind(sys.argv[1]); u.listen()
print("ready", flush=True)
c, _ = u.accept()
for _ in range(2):
    msg, fds, _, _ = socket.recv_fds(c, 100, 1)
    s = socket.socket(fileno=fds[0])
    tag = msg.decode()
    peer, local = s.getpeername(), s.getsockname()
    print(tag, s.family.name, s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN),
          "peer", peer[0], "local", local[0],
          "port-ok", (local if tag == "accepted" else peer)[1] == port, flush=True)
    s.sendall(b"from B via " + msg + b"\n")
    s.close()
    c.sendall(b"k")
PY
	cat >"$TEST_TMP/send.py" <<'PY'
import socket, sys
path, bind, conn, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((bind, port)); l.listen()
c = socket.create_connection((conn, port))
a, _ = l.accept()
# to this same process over a socketpair: a new fd number, no hook saw it
p, q = socket.socketpair()
socket.send_fds(p, [b"self"], [a.fileno()])
_, fds, _, _ = socket.recv_fds(q, 10, 1)
s = socket.socket(fileno=fds[0])
print("self", s.family.name, "peer", s.getpeername()[0], "local", s.getsockname()[0])
s.close()
# to another process over an AF_UNIX path
u = socket.socket(socket.AF_UNIX); u.connect(path)
for tag, fd, other in (("accepted", a, c), ("client", c, a)):
    socket.send_fds(u, [tag.encode()], [fd.fileno()])
    u.recv(1)
    print("read", other.recv(100).decode().strip())
PY
	start_bg trecv timeout 60 python3 -u "$TEST_TMP/recv.py" "$TEST_TMP/t.sock" 9251
	wait_for_log trecv '^ready'
	run timeout 60 python3 "$TEST_TMP/send.py" "$TEST_TMP/t.sock" 0.0.0.0 127.0.0.1 9251
	echo "tcp sender: $output"
	[ "$status" -eq 0 ]
	wait_for_log trecv '^client '
	tcp=$(sed -e 's/127\.0\.0\.1/PEER/g' <<<"$output"$'\n'"$(cat "$TEST_TMP/trecv.log")")

	start_bg vrecv timeout 60 env LD_PRELOAD="$LIB" python3 -u "$TEST_TMP/recv.py" "$TEST_TMP/v.sock" 9250
	wait_for_log vrecv '^ready'
	run timeout 60 env LD_PRELOAD="$LIB" python3 "$TEST_TMP/send.py" "$TEST_TMP/v.sock" vsock-any.local vsock-1.local 9250
	echo "vsock sender: $output"
	wait_for_log vrecv '^client ' || true
	echo "vsock receiver:"; cat "$TEST_TMP/vrecv.log"
	[ "$status" -eq 0 ]
	vs=$(sed -e 's/127\.128\.0\.1/PEER/g' <<<"$output"$'\n'"$(cat "$TEST_TMP/vrecv.log")")
	diff <(echo "$tcp") <(echo "$vs")
	grep -q '^accepted AF_INET 2 peer 127.128.0.1 local 127.128.0.1 port-ok True$' "$TEST_TMP/vrecv.log"
}
