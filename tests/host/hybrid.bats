#!/usr/bin/env bats
# Hybrid vsock on the host side of a Firecracker / Cloud Hypervisor VM: a
# `hybrid CID PATH` rule turns connects to vsock-CID.local:P into the VMM's
# Unix socket protocol (PATH, "CONNECT P\n", "OK n\n") and binds on
# vsock-CID.local:P into a Unix listener at PATH_P.  The VMM is played by
# tests/helpers/hybrid_vmm.py, which also misbehaves on demand (--mode).
#
# No vsock here: only Unix sockets and 127.0.0.1 TCP.  The suite runs under
# build/helpers/novsock, so a hybrid socket that fell back to real AF_VSOCK
# would die with SIGSYS (status 159), never dial this machine's vsock device.
# vsock ports here are only names (PATH_P); TCP ports come from free_tcp_port.

bats_require_minimum_version 1.5.0
load ../lib/common
load ../lib/hybrid

SIGSYS_STATUS=159 # 128 + SIGSYS
DIAL=$HELPERS/dial.py

setup() {
	common_setup
	hybrid_setup 100000
}
teardown() { common_teardown; }

# start_http NAME PORT: python's http.server on 127.0.0.1:PORT serving www/.
start_http() {
	start_bg "$1" python3 -m http.server --bind 127.0.0.1 --directory "$TEST_TMP/www" "$2"
	wait_for_tcp_port "$2"
}

# start_greeter NAME PORT: a TCP service that speaks first ("greeting NAME"),
# then echoes.
start_greeter() {
	start_bg "$1" socat -d -d TCP4-LISTEN:"$2",bind=127.0.0.1,fork,reuseaddr SYSTEM:"echo greeting $1; cat"
	wait_for_log "$1" "listening on"
}

wait_gone() { # PIDFILE: until that process has exited
	local i
	for ((i = 0; i < 100; i++)); do kill -0 "$(<"$1")" 2>/dev/null || return 0; sleep 0.1; done
	return 1
}

# pyconnect PORT [MODE]: under the shim, a BLOCKING socket() + connect() to
# vsock-3.local:PORT; prints "ok" or "error ERRNO" and the seconds taken.
# MODE sndtimeo sets SO_SNDTIMEO 1 s first; nonblock makes the socket
# non-blocking (connect_ex); both does both.
pyconnect() {
	"${HY[@]}" python3 -c '
import errno, socket, struct, sys, time
port, mode = int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else ""
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
if mode in ("sndtimeo", "both"):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 1, 0))
if mode in ("nonblock", "both"):
    s.setblocking(False)
sa = socket.getaddrinfo("vsock-3.local", port, socket.AF_INET)[0][4]
t = time.monotonic()
rc = s.connect_ex(sa)
took = time.monotonic() - t
print("ok" if rc == 0 else "error " + errno.errorcode.get(rc, str(rc)), "%.1f" % took)' "$@"
}

# ---- the rule ---------------------------------------------------------------

@test "--check shows hybrid rules from --hybrid (relative made absolute), VSOCKIFY_RULES and a file" {
	run "$VSOCKIFY" --check --hybrid 3=/x/v.sock
	show
	[ "$status" -eq 0 ]
	[ "$output" = "hybrid 3 /x/v.sock" ]
	cd "$TEST_TMP"
	run "$VSOCKIFY" --check --hybrid 3=v.sock
	show
	[ "$status" -eq 0 ]
	[ "$output" = "hybrid 3 $TEST_TMP/v.sock" ]
	run env VSOCKIFY_RULES="hybrid 3 $TEST_TMP/v.sock" "$VSOCKIFY" --check
	show
	[ "$status" -eq 0 ]
	[ "$output" = "hybrid 3 $TEST_TMP/v.sock" ]
	printf 'hybrid 7 /run/vm7/v.sock\n' >"$TEST_TMP/conf"
	run "$VSOCKIFY" --check -c "$TEST_TMP/conf"
	show
	[ "$status" -eq 0 ]
	[ "$output" = "hybrid 7 /run/vm7/v.sock" ]
}

@test "a relative PATH in VSOCKIFY_RULES or a file is an error" {
	# the oracle: the same rule with an absolute path is fine
	run env VSOCKIFY_RULES="hybrid 3 /run/vm3/v.sock" "$VSOCKIFY" --check
	[ "$status" -eq 0 ]
	run env VSOCKIFY_RULES="hybrid 3 v.sock" "$VSOCKIFY" --check
	show
	[ "$status" -eq 2 ]
	[[ $output == *"VSOCKIFY_RULES: rule 1: "*absolute* ]]
	printf '# vm\nhybrid 3 run/v.sock\n' >"$TEST_TMP/conf"
	run "$VSOCKIFY" --check -c "$TEST_TMP/conf"
	show
	[ "$status" -eq 2 ]
	[[ $output == *"$TEST_TMP/conf:2: "*absolute* ]]
	# and the wrapper runs nothing with it
	run env VSOCKIFY_RULES="hybrid 3 v.sock" "$VSOCKIFY" echo ran
	[ "$status" -eq 2 ]
	[[ $output != *ran* ]]
}

# ---- host -> guest: clients --------------------------------------------------

@test "curl http://vsock-3.local:8080/file through the VMM: right content, remote 127.128.0.3:8080" {
	local p
	p=$(free_tcp_port)
	start_http web "$p"
	start_vmm vmm --port "8080=tcp:127.0.0.1:$p"
	run "${HY[@]}" curl -sS -o "$TEST_TMP/got" -w '%{remote_ip}:%{remote_port} %{local_ip}' \
		http://vsock-3.local:8080/file
	show
	[ "$status" -eq 0 ]
	[[ $output == "127.128.0.3:8080 127.128.0.2" ]]
	cmp "$TEST_TMP/got" "$TEST_TMP/www/file"
	grep -qx "hybrid_vmm: got line: CONNECT 8080" "$TEST_TMP/vmm.log"
}

@test "rules from VSOCKIFY_CONFIG and from VSOCKIFY_RULES with LD_PRELOAD alone work too" {
	local p
	p=$(free_tcp_port)
	start_http web "$p"
	start_vmm vmm --port "8081=tcp:127.0.0.1:$p"
	printf 'hybrid 3 %s\n' "$UDS" >"$TEST_TMP/conf"
	run env VSOCKIFY_CONFIG="$TEST_TMP/conf" LD_PRELOAD="$LIB" curl -sS -o "$TEST_TMP/got1" http://vsock-3.local:8081/file
	show
	[ "$status" -eq 0 ]
	cmp "$TEST_TMP/got1" "$TEST_TMP/www/file"
	run env VSOCKIFY_RULES="hybrid 3 $UDS" LD_PRELOAD="$LIB" curl -sS -o "$TEST_TMP/got2" http://vsock-3.local:8081/file
	show
	[ "$status" -eq 0 ]
	cmp "$TEST_TMP/got2" "$TEST_TMP/www/file"
	[ "$(grep -c "got line: CONNECT 8081" "$TEST_TMP/vmm.log")" -eq 2 ]
}

@test "python, blocking socket: a Unix socket on the same fd that still looks like TCP" {
	local p
	p=$(free_tcp_port)
	start_echo echo tcp "$p"
	start_vmm vmm --port "7000=tcp:127.0.0.1:$p"
	run "${HY[@]}" python3 -c '
import os, socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
fd = s.fileno()
s.connect(("vsock-3.local", 7000))
print("fd", s.fileno() == fd)
print("peer", s.getpeername())
print("local", s.getsockname()[0], 49152 <= s.getsockname()[1] <= 65535)
print("domain", s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN) == socket.AF_INET)
print("protocol", s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL) == socket.IPPROTO_TCP)
print("type", s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
print("nodelay", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0)
# the kernel object behind the fd is an AF_UNIX socket (in /proc/net/unix)
ino = os.readlink("/proc/self/fd/%d" % fd)[len("socket:["):-1]
print("unix", any(l.split()[6] == ino for l in open("/proc/net/unix").readlines()[1:]))
msg = bytes(range(256)) * 64
s.sendall(msg)
got = b""
while len(got) < len(msg):
    d = s.recv(65536)
    if not d:
        break
    got += d
print("echo", got == msg)'
	show
	[ "$status" -eq 0 ]
	[ "$output" = "fd True
peer ('127.128.0.3', 7000)
local 127.128.0.2 True
domain True
protocol True
type True
nodelay True
unix True
echo True" ]
}

@test "python asyncio open_connection (non-blocking connect) and a raw non-blocking connect get 0" {
	local p
	p=$(free_tcp_port)
	start_echo echo tcp "$p"
	start_vmm vmm --port "7001=tcp:127.0.0.1:$p"
	run "${HY[@]}" python3 -c '
import asyncio, socket
async def main():
    r, w = await asyncio.wait_for(asyncio.open_connection("vsock-3.local", 7001), 20)
    print("peer", w.get_extra_info("peername"))
    w.write(b"hello hybrid\n")
    print("line", await asyncio.wait_for(r.readline(), 20))
    w.close()
asyncio.run(main())
s = socket.socket()
s.setblocking(False)
print("connect_ex", s.connect_ex(("127.128.0.3", 7001)))
s.setblocking(True)
s.sendall(b"x\n")
print("after", s.recv(10))'
	show
	[ "$status" -eq 0 ]
	[ "$output" = "peer ('127.128.0.3', 7001)
line b'hello hybrid\\n'
connect_ex 0
after b'x\\n'" ]
}

@test "socat - TCP:vsock-3.local:P: 2 MB both ways, byte-exact, EOF after the half-close" {
	local p
	p=$(free_tcp_port)
	# socat+cat, not echo_server.py: that one drops what a full socket refuses
	start_bg cat socat -d -d TCP4-LISTEN:"$p",bind=127.0.0.1,fork,reuseaddr EXEC:cat
	wait_for_log cat "listening on"
	start_vmm vmm --port "7002=tcp:127.0.0.1:$p"
	head -c 2000000 /dev/urandom >"$TEST_TMP/in"
	run through timeout 60 "${HY[@]}" socat -b 65536 - TCP:vsock-3.local:7002
	show
	[ "$status" -eq 0 ]
	cmp "$TEST_TMP/in" "$TEST_TMP/out"
}

@test "the IPv6 fake of CID 3 and the numeric IPv4 fake reach the VMM too" {
	local p
	p=$(free_tcp_port)
	start_echo echo tcp "$p"
	start_vmm vmm --port "7003=tcp:127.0.0.1:$p"
	run "${HY[@]}" python3 -c '
import socket
for fam, host in ((socket.AF_INET6, "100::7673:6f63:0:3"), (socket.AF_INET, "127.128.0.3")):
    s = socket.socket(fam)
    s.connect((host, 7003))
    s.sendall(b"v\n")
    print(s.getpeername()[:2], s.recv(10))'
	show
	[ "$status" -eq 0 ]
	[ "$output" = "('100::7673:6f63:0:3', 7003) b'v\\n'
('127.128.0.3', 7003) b'v\\n'" ]
}

@test "20 concurrent connections each get their own stream" {
	local p
	p=$(free_tcp_port)
	start_echo echo tcp "$p"
	start_vmm vmm --port "7004=tcp:127.0.0.1:$p"
	run "${HY[@]}" python3 -c '
import os, socket, threading
ok = []
def one(i):
    s = socket.create_connection(("vsock-3.local", 7004), timeout=30)
    msg = os.urandom(5000) + b"%d" % i
    s.sendall(msg); s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
    ok.append(got == msg)
ts = [threading.Thread(target=one, args=(i,)) for i in range(20)]
[t.start() for t in ts]; [t.join() for t in ts]
print(len(ok), all(ok))'
	show
	[ "$status" -eq 0 ]
	[ "$output" = "20 True" ]
	grep "got line" "$TEST_TMP/vmm.log" | sort | uniq -c
	[ "$(grep -c "got line: CONNECT 7004" "$TEST_TMP/vmm.log")" -eq 20 ]
}

# ---- the handshake against a misbehaving VMM ---------------------------------

@test "OK in two writes (split) or a byte at a time: the app gets only the service's bytes" {
	local p mode
	p=$(free_tcp_port)
	start_greeter greet "$p"
	for mode in split bytes; do
		start_vmm "vmm-$mode" --mode "$mode" --port "7010=tcp:127.0.0.1:$p"
		run "${HY[@]}" python3 "$DIAL" vsock-3.local 7010 "" 15
		show
		[ "$status" -eq 0 ]
		[ "${lines[0]}" = "peer 127.128.0.3 7010" ]
		[ "${lines[2]}" = "got greeting greet" ]
		kill "$(<"$TEST_TMP/vmm-$mode.pid")"
		wait_gone "$TEST_TMP/vmm-$mode.pid"
	done
}

@test "split OK, curl: the page is exact" {
	local p
	p=$(free_tcp_port)
	start_http web "$p"
	start_vmm vmm --mode split --port "8082=tcp:127.0.0.1:$p"
	run "${HY[@]}" curl -sS -o "$TEST_TMP/got" http://vsock-3.local:8082/file
	show
	[ "$status" -eq 0 ]
	cmp "$TEST_TMP/got" "$TEST_TMP/www/file"
}

@test "OK and the service's first bytes in one segment (with-data): none of OK reaches the app" {
	local p
	p=$(free_tcp_port)
	start_greeter greet "$p"
	start_vmm vmm --mode with-data --port "7011=tcp:127.0.0.1:$p"
	# blocking socket, exact bytes: the greeting, then the echo
	run "${HY[@]}" python3 -c '
import socket
s = socket.socket()
s.connect(("vsock-3.local", 7011))
s.sendall(b"echoed\n")
s.settimeout(20)
got = b""
while not got.endswith(b"echoed\n"):
    d = s.recv(1)          # one byte a call: no byte of OK may be left over
    if not d:
        break
    got += d
print(repr(got))'
	show
	[ "$status" -eq 0 ]
	[ "$output" = "b'greeting greet\\nechoed\\n'" ]
	# the test did exercise the case: OK and the greeting went in one write
	grep -q "with-data: sent b'OK [0-9]*\\\\n' and 15 service bytes in one write" "$TEST_TMP/vmm.log"
	# and the same through socat (non-blocking connect, big reads)
	run "${HY[@]}" socat - TCP:vsock-3.local:7011 </dev/null
	show
	[ "$status" -eq 0 ]
	[ "$output" = "greeting greet" ]
}

@test "VMM closes without OK (close mode, or nothing on that guest port): ECONNREFUSED; curl exit 7" {
	local p
	p=$(free_tcp_port)
	start_echo echo tcp "$p"
	start_vmm vmm --mode close --port "7020=tcp:127.0.0.1:$p"
	run pyconnect 7020
	show
	[ "$status" -eq 0 ]
	[[ $output == "error ECONNREFUSED "* ]]
	run "${HY[@]}" python3 "$DIAL" vsock-3.local 7020
	[ "$output" = "error ECONNREFUSED" ]
	run "${HY[@]}" curl -sS http://vsock-3.local:7020/
	show
	[ "$status" -eq 7 ]
	grep -q "got line: CONNECT 7020" "$TEST_TMP/vmm.log"
}

@test "a guest port nothing listens on: ECONNREFUSED (python ConnectionRefusedError, curl 7)" {
	start_vmm vmm
	run "${HY[@]}" python3 -c '
import socket
try:
    socket.create_connection(("vsock-3.local", 7021))
except ConnectionRefusedError:
    print("refused")'
	show
	[ "$output" = refused ]
	run "${HY[@]}" curl -sS http://vsock-3.local:7021/
	[ "$status" -eq 7 ]
	grep -q "port 7021 is not mapped" "$TEST_TMP/vmm.log"
}

@test "an answer that is not 'OK <digits>': ECONNREFUSED (HELLO, binary junk, 'OK', 'OK 12x', 'OK ')" {
	local p i=0 mode
	p=$(free_tcp_port)
	start_echo echo tcp "$p"
	for mode in garbage junk "reply:OK\\n" "reply:OK 12x\\n" "reply:OK \\n" "reply:NO 5\\n"; do
		i=$((i + 1))
		if [[ $mode == reply:* ]]; then
			start_vmm "vmm$i" --mode reply --reply "${mode#reply:}" --port "7022=tcp:127.0.0.1:$p"
		else
			start_vmm "vmm$i" --mode "$mode" --port "7022=tcp:127.0.0.1:$p"
		fi
		VSOCKIFY_LOG=warn VSOCKIFY_LOG_FILE="$TEST_TMP/shim$i.log" run pyconnect 7022
		echo "mode $mode"
		show
		[ "$status" -eq 0 ]
		[[ $output == "error ECONNREFUSED "* ]]
		cat "$TEST_TMP/shim$i.log"
		[[ $mode != garbage ]] || grep -q HELLO "$TEST_TMP/shim$i.log"
		run "${HY[@]}" curl -sS http://vsock-3.local:7022/
		[ "$status" -eq 7 ]
		kill "$(<"$TEST_TMP/vmm$i.pid")"
		wait_gone "$TEST_TMP/vmm$i.pid"
	done
}

@test "a 1 MiB line with no newline: ECONNREFUSED quickly, no crash" {
	start_vmm vmm --mode longline
	run pyconnect 7023
	show
	[ "$status" -eq 0 ]
	[[ $output == "error ECONNREFUSED "* ]]
	local took=${output##* }
	((${took%.*} < 5))
	run "${HY[@]}" curl -sS http://vsock-3.local:7023/
	show
	[ "$status" -eq 7 ]
}

@test "a VMM that never answers: ETIMEDOUT after SO_SNDTIMEO (blocking and non-blocking sockets)" {
	start_vmm vmm --mode silent
	run pyconnect 7024 sndtimeo
	show
	[ "$status" -eq 0 ]
	[[ $output == "error ETIMEDOUT "* ]]
	local took=${output##* }
	[[ $took == 0.9 || $took == 1.* || $took == 2.* ]]
	run pyconnect 7024 both
	show
	[ "$status" -eq 0 ]
	[[ $output == "error ETIMEDOUT "* ]]
	took=${output##* }
	[[ $took == 0.9 || $took == 1.* || $took == 2.* ]]
}

@test "a VMM that never answers: ETIMEDOUT after 10 s by default; curl does not hang either" {
	start_vmm vmm --mode silent
	local t0=$SECONDS
	timeout 60 "${HY[@]}" curl -sS http://vsock-3.local:7025/ >"$TEST_TMP/curl.out" 2>&1 &
	local cpid=$!
	run pyconnect 7025
	show
	[ "$status" -eq 0 ]
	[[ $output == "error ETIMEDOUT "* ]]
	local took=${output##* }
	((${took%.*} >= 9 && ${took%.*} <= 15))
	local rc=0
	wait "$cpid" || rc=$?
	cat "$TEST_TMP/curl.out"
	((rc != 0 && rc != 124))
	((SECONDS - t0 < 40))
}

@test "no socket at the VMM's path: ECONNREFUSED and a log line that names the path" {
	run env VSOCKIFY_LOG_FILE="$TEST_TMP/shim.log" "${HY[@]}" python3 "$DIAL" vsock-3.local 7026
	show
	[ "$output" = "error ECONNREFUSED" ]
	cat "$TEST_TMP/shim.log"
	grep -F "$UDS" "$TEST_TMP/shim.log"
	run "${HY[@]}" curl -sS http://vsock-3.local:7026/
	[ "$status" -eq 7 ]
}

# ---- only the hybrid CID changes; nothing touches AF_VSOCK -------------------

@test "strace: curl makes an AF_UNIX connect to the VMM's path and no AF_VSOCK socket" {
	command -v strace >/dev/null || skip "strace is not installed"
	local p
	p=$(free_tcp_port)
	start_http web "$p"
	start_vmm vmm --port "8083=tcp:127.0.0.1:$p"
	run "${HY[@]}" strace -f -e trace=socket,connect,socketpair -o "$TEST_TMP/strace" \
		curl -sS -o "$TEST_TMP/got" http://vsock-3.local:8083/file
	show
	[ "$status" -eq 0 ]
	cmp "$TEST_TMP/got" "$TEST_TMP/www/file"
	cat "$TEST_TMP/strace"
	grep -E "connect\([0-9]+, \{sa_family=AF_UNIX, sun_path=\"$UDS\"\}" "$TEST_TMP/strace"
	run ! grep -E "AF_VSOCK|PF_VSOCK|socket\(0x28" "$TEST_TMP/strace"
	# the app's TCP socket was never connected over TCP
	run ! grep -E "connect\(.*AF_INET.*127\.128\." "$TEST_TMP/strace"
}

@test "without a hybrid rule vsock-3.local is real vsock (dies under the guard); other CIDs too" {
	run "$VSOCKIFY" python3 "$DIAL" vsock-3.local 7030
	show
	[ "$status" -eq "$SIGSYS_STATUS" ]
	# a hybrid rule for CID 3 does not touch CID 4
	run "${HY[@]}" python3 "$DIAL" vsock-4.local 7030
	show
	[ "$status" -eq "$SIGSYS_STATUS" ]
	# nor a bind to vsock-4.local
	run "${HY[@]}" python3 -c 'import socket; socket.socket().bind(("vsock-4.local", 7030)); print("bound")'
	[ "$status" -eq "$SIGSYS_STATUS" ]
}

@test "plain TCP and Unix traffic under a hybrid rule is untouched" {
	local p
	p=$(free_tcp_port)
	start_http web "$p"
	run "${HY[@]}" curl -sS -o "$TEST_TMP/got" -w '%{remote_ip}' "http://127.0.0.1:$p/file"
	show
	[ "$status" -eq 0 ]
	[ "$output" = 127.0.0.1 ]
	cmp "$TEST_TMP/got" "$TEST_TMP/www/file"
	run "${HY[@]}" python3 -c '
import socket, sys
l = socket.socket(socket.AF_UNIX); l.bind(sys.argv[1] + "/u"); l.listen()
c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1] + "/u")
a, _ = l.accept(); c.sendall(b"unix"); print(a.recv(4))
t = socket.socket(); t.bind(("127.0.0.1", 0)); print(t.getsockname()[0])' "$TEST_TMP"
	show
	[ "$status" -eq 0 ]
	[ "$output" = "b'unix'
127.0.0.1" ]
}

# ---- guest -> host: listeners ------------------------------------------------

@test "http.server --bind vsock-3.local 5000 listens at PATH_5000; a guest's connection reaches it" {
	local q
	q=$(free_tcp_port)
	start_bg srv "${HY[@]}" python3 -u -m http.server --bind vsock-3.local --directory "$TEST_TMP/www" 5000
	wait_for_sock "$UDS"_5000
	start_vmm vmm --guest "5000=tcp:127.0.0.1:$q"
	run curl -sS -o "$TEST_TMP/got" "http://127.0.0.1:$q/file"
	show
	[ "$status" -eq 0 ]
	cmp "$TEST_TMP/got" "$TEST_TMP/www/file"
	cat "$TEST_TMP/srv.log"
	grep -E '^127\.128\.0\.3 - - .*"GET /file HTTP/1\.1" 200' "$TEST_TMP/srv.log"
	grep -q "guest->host 5000: relaying to $UDS"_5000 "$TEST_TMP/vmm.log"
}

@test "a hybrid listener shows the address it bound; accept shows the peer as CID 3's fake" {
	run "${HY[@]}" python3 -c '
import socket, sys
l = socket.socket()
l.bind(("vsock-3.local", 5002))
l.listen()
print("sockname", l.getsockname())
c = socket.socket(socket.AF_UNIX)       # what the VMM does for a guest connect
c.connect(sys.argv[1] + "_5002")
a, peer = l.accept()
print("peer", peer[0], type(peer[1]).__name__)
print("getpeername", a.getpeername()[0], 49152 <= a.getpeername()[1] <= 65535)
print("getsockname", a.getsockname())
print("family", a.family.name, a.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN) == socket.AF_INET)
c.sendall(b"to-app"); print(a.recv(10))
a.sendall(b"to-guest"); print(c.recv(10))' "$UDS"
	show
	[ "$status" -eq 0 ]
	[ "$output" = "sockname ('127.128.0.3', 5002)
peer 127.128.0.3 int
getpeername 127.128.0.3 True
getsockname ('127.128.0.2', 5002)
family AF_INET True
b'to-app'
b'to-guest'" ]
}

@test "Python's http.server says it serves on 127.128.0.3 port 5003" {
	start_bg srv "${HY[@]}" python3 -u -m http.server --bind vsock-3.local 5003
	wait_for_log srv "Serving HTTP"
	grep -q "Serving HTTP on 127.128.0.3 port 5003" "$TEST_TMP/srv.log"
	[[ -S "$UDS"_5003 ]]
}

@test "vsock-any.local with exactly one hybrid rule binds that CID's PATH_P" {
	run "${HY[@]}" python3 -c '
import os, socket, sys
l = socket.socket(); l.bind(("vsock-any.local", 5004)); l.listen()
print(os.path.exists(sys.argv[1] + "_5004"))' "$UDS"
	show
	[ "$status" -eq 0 ]
	[ "$output" = True ]
}

@test "two hybrid rules: vsock-any.local is EADDRNOTAVAIL, each CID binds its own PATH_P" {
	mkdir "$TEST_TMP/vm4"
	run --separate-stderr "$VSOCKIFY" --hybrid "3=$UDS" --hybrid "4=$TEST_TMP/vm4/v.sock" python3 -c '
import errno, os, socket, sys
s = socket.socket()
try:
    s.bind(("vsock-any.local", 5005)); print("bound")
except OSError as e:
    print("any", errno.errorcode[e.errno])
for cid, path in ((3, sys.argv[1]), (4, sys.argv[2])):
    l = socket.socket(); l.bind(("vsock-%d.local" % cid, 5005)); l.listen()
    print(cid, os.path.exists(path + "_5005"))' "$UDS" "$TEST_TMP/vm4/v.sock"
	show
	[ "$status" -eq 0 ]
	[ "$output" = "any EADDRNOTAVAIL
3 True
4 True" ]
}

@test "a stale socket file at PATH_P is replaced; a live listener there gives EADDRINUSE" {
	# stale: a socket bound and closed without unlink
	python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$UDS"_5006
	[[ -S "$UDS"_5006 ]]
	run "${HY[@]}" python3 -c '
import socket, sys
l = socket.socket(); l.bind(("vsock-3.local", 5006)); l.listen()
c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1] + "_5006")
a, _ = l.accept(); c.sendall(b"fresh"); print(a.recv(5))' "$UDS"
	show
	[ "$status" -eq 0 ]
	[ "$output" = "b'fresh'" ]
	# not a socket: EADDRINUSE, and the file is left alone
	echo precious >"$UDS"_5013
	run "${HY[@]}" python3 -c '
import errno, socket
try:
    socket.socket().bind(("vsock-3.local", 5013)); print("bound")
except OSError as e:
    print(errno.errorcode[e.errno])'
	show
	[ "$output" = EADDRINUSE ]
	[ "$(cat "$UDS"_5013)" = precious ]
	# live: someone else listens there
	start_bg live socat -d -d UNIX-LISTEN:"$UDS"_5007,fork SYSTEM:"echo live"
	wait_for_log live "listening on"
	run "${HY[@]}" python3 -c '
import errno, socket
l = socket.socket()
try:
    l.bind(("vsock-3.local", 5007)); l.listen(); print("bound")
except OSError as e:
    print(errno.errorcode[e.errno])'
	show
	[ "$status" -eq 0 ]
	[ "$output" = EADDRINUSE ]
	# and the live listener is still there and still answers
	run socat - UNIX-CONNECT:"$UDS"_5007
	[ "$output" = live ]
}

@test "the listener's file is removed on close, by its creator only (not by a forked child)" {
	run "${HY[@]}" python3 -c '
import os, socket, sys
path = sys.argv[1] + "_5008"
l = socket.socket(); l.bind(("vsock-3.local", 5008)); l.listen()
print("listening", os.path.exists(path))
pid = os.fork()
if pid == 0:
    l.close(); os._exit(0)
os.waitpid(pid, 0)
print("after child close", os.path.exists(path))
l.close()
print("after close", os.path.exists(path))' "$UDS"
	show
	[ "$status" -eq 0 ]
	[ "$output" = "listening True
after child close True
after close False" ]
}

@test "http.server stopped with SIGINT closes its listener: the file is gone" {
	# a background job starts with SIGINT ignored, and then python never
	# raises KeyboardInterrupt: restore the default handler first
	start_bg srv "${HY[@]}" python3 -u -c '
import runpy, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.argv = ["http.server", "--bind", "vsock-3.local", "5009"]
runpy.run_module("http.server", run_name="__main__")'
	wait_for_sock "$UDS"_5009
	wait_for_log srv "Serving HTTP"
	kill -INT "$(<"$TEST_TMP/srv.pid")"
	wait_gone "$TEST_TMP/srv.pid"
	cat "$TEST_TMP/srv.log"
	grep -q "Keyboard interrupt received" "$TEST_TMP/srv.log"
	[[ ! -e "$UDS"_5009 ]]
}

@test "socat TCP-LISTEN:5010,bind=vsock-3.local,fork: each guest connection, 1 MB echoed" {
	local q
	q=$(free_tcp_port)
	start_bg srv "${HY[@]}" socat -d -d TCP-LISTEN:5010,bind=vsock-3.local,fork,reuseaddr EXEC:cat
	wait_for_sock "$UDS"_5010
	start_vmm vmm --guest "5010=tcp:127.0.0.1:$q"
	head -c 1000000 /dev/urandom >"$TEST_TMP/in"
	local i
	for i in 1 2 3; do
		run through timeout 60 socat - TCP:127.0.0.1:"$q"
		show
		[ "$status" -eq 0 ]
		cmp "$TEST_TMP/in" "$TEST_TMP/out"
	done
	cat "$TEST_TMP/srv.log"
	[ "$(grep -c "accepting connection from AF=2 127\.128\.0\.3:" "$TEST_TMP/srv.log")" -eq 3 ]
}

@test "both ends shimmed: curl -> VMM -> http.server bound on vsock-3.local, all over Unix sockets" {
	start_bg srv "${HY[@]}" python3 -u -m http.server --bind vsock-3.local --directory "$TEST_TMP/www" 5011
	wait_for_sock "$UDS"_5011
	# the VMM's CONNECT 80 reaches the guest's listener, here the same host file
	start_vmm vmm --port "80=unix:${UDS}_5011"
	run "${HY[@]}" curl -sS -o "$TEST_TMP/got" -w '%{remote_ip}:%{remote_port}' http://vsock-3.local/file
	show
	[ "$status" -eq 0 ]
	[ "$output" = "127.128.0.3:80" ]
	cmp "$TEST_TMP/got" "$TEST_TMP/www/file"
	grep -E '^127\.128\.0\.3 - - .*"GET /file' "$TEST_TMP/srv.log"
}

@test "port 0 on vsock-3.local picks a free port in 49152..65535, and listens there" {
	run "${HY[@]}" python3 -c '
import os, socket, sys
l = socket.socket(); l.bind(("vsock-3.local", 0)); l.listen()
host, port = l.getsockname()
print(host, 49152 <= port <= 65535, os.path.exists("%s_%d" % (sys.argv[1], port)))' "$UDS"
	show
	[ "$status" -eq 0 ]
	[ "$output" = "127.128.0.3 True True" ]
}

@test "a dual-stack server: the IPv4 and IPv6 fakes of one port share the listener; the file goes with the last" {
	run "${HY[@]}" python3 -c '
import os, socket, sys
path = sys.argv[1] + "_5015"
l4 = socket.socket(socket.AF_INET); l4.bind(("vsock-3.local", 5015)); l4.listen()
l6 = socket.socket(socket.AF_INET6); l6.bind(("100::7673:6f63:0:3", 5015)); l6.listen()
print("both", l6.getsockname()[:2])
l4.close(); print("after one", os.path.exists(path))
l6.close(); print("after both", os.path.exists(path))' "$UDS"
	show
	[ "$status" -eq 0 ]
	[ "$output" = "both ('100::7673:6f63:0:3', 5015)
after one True
after both False" ]
}

@test "a connect rule whose target CID is hybrid goes through the VMM; the app sees its own address" {
	local p t
	p=$(free_tcp_port)
	t=$(free_tcp_port)
	start_http web "$p"
	start_vmm vmm --port "8084=tcp:127.0.0.1:$p"
	run "${HY[@]}" -r "connect 127.0.0.1:$t vsock:3:8084" curl -sS -o "$TEST_TMP/got" -w '%{remote_ip}:%{remote_port}' "http://127.0.0.1:$t/file"
	show
	[ "$status" -eq 0 ]
	[ "$output" = "127.0.0.1:$t" ]
	cmp "$TEST_TMP/got" "$TEST_TMP/www/file"
	grep -q "got line: CONNECT 8084" "$TEST_TMP/vmm.log"
}

@test "a listen rule whose target CID is hybrid listens at PATH_P" {
	local t q
	t=$(free_tcp_port)
	q=$(free_tcp_port)
	start_bg srv "${HY[@]}" -r "listen *:$t vsock:3:5016" python3 -u -m http.server --bind 127.0.0.1 --directory "$TEST_TMP/www" "$t"
	wait_for_sock "$UDS"_5016
	start_vmm vmm --guest "5016=tcp:127.0.0.1:$q"
	run curl -sS -o "$TEST_TMP/got" "http://127.0.0.1:$q/file"
	show
	[ "$status" -eq 0 ]
	cmp "$TEST_TMP/got" "$TEST_TMP/www/file"
	grep -E '^127\.128\.0\.3 - - .*"GET /file' "$TEST_TMP/srv.log"
}

@test "a connected hybrid socket keeps its TCP face across exec" {
	local p
	p=$(free_tcp_port)
	start_echo echo tcp "$p"
	start_vmm vmm --port "7040=tcp:127.0.0.1:$p"
	run "${HY[@]}" python3 -c '
import os, socket, sys
s = socket.create_connection(("vsock-3.local", 7040))
s.set_inheritable(True)
os.execvp("python3", ["python3", "-c", """
import socket, sys
s = socket.socket(fileno=int(sys.argv[1]))
print(s.family.name, s.getpeername(), s.getsockname()[0])
s.sendall(b"after exec"); print(s.recv(20))""", str(s.fileno())])'
	show
	[ "$status" -eq 0 ]
	[ "$output" = "AF_INET ('127.128.0.3', 7040) 127.128.0.2
b'after exec'" ]
}

# sigconnect HOST PORT restart|interrupt: a BLOCKING libc connect() with
# SIGALRM at 100 ms (SA_RESTART or not); then, after EINTR, poll + SO_ERROR
# as PEP 475 does; then the service's first bytes.
sigconnect() {
	python3 -c '
import ctypes, errno, select, signal, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
host, port, restart = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "restart"
signal.signal(signal.SIGALRM, lambda *a: None)
signal.siginterrupt(signal.SIGALRM, not restart)
if restart: # Python'"'"'s own SIGINT handler lacks SA_RESTART
    signal.signal(signal.SIGINT, signal.SIG_DFL)
s = socket.socket()
ip = socket.inet_aton(socket.gethostbyname(host))
sa = ctypes.create_string_buffer(bytes([2, 0, port >> 8, port & 255]) + ip + bytes(8), 16)
signal.setitimer(signal.ITIMER_REAL, 0.1)
t = time.monotonic()
rc = libc.connect(s.fileno(), sa, 16)
e, took = ctypes.get_errno(), time.monotonic() - t
print("connect", rc, errno.errorcode.get(e, e) if rc else "-", "at once" if took < 0.4 else "waited")
if rc:
    print("writable", bool(select.select([], [s], [], 10)[1]))
    print("SO_ERROR", s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
s.settimeout(10)
print(s.recv(15))' "$@"
}

# start_late_greeter NAME PORT: a TCP service on 127.0.0.1:PORT whose accept
# queue is full for 2 s (backlog 0 and a first client queued), so a
# connect to it waits in SYN_SENT as one to a slow network would; then it
# greets every connection.
start_late_greeter() {
	start_bg "$1" python3 -c '
import socket, sys, threading, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1]))); l.listen(0)
filler = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print("listening", flush=True)
time.sleep(2)
while True:
    c, _ = l.accept(); c.sendall(b"greeting late\n")
    threading.Thread(target=lambda c=c: (time.sleep(5), c.close()), daemon=True).start()' "$2"
	wait_for_log "$1" "^listening"
}

# start_signal_peers: the guest's greeter on $p behind a VMM that answers
# OK late (port 7041), and the TCP oracle's late greeter on $q.
start_signal_peers() {
	p=$(free_tcp_port)
	start_greeter greet "$p"
	start_vmm vmm --mode late --port "7041=tcp:127.0.0.1:$p"
	q=$(free_tcp_port)
	start_late_greeter oracle "$q"
}

@test "a blocking hybrid connect cut short by a signal (no SA_RESTART): EINTR at once, as TCP; then poll and SO_ERROR report the connection" {
	start_signal_peers
	run sigconnect 127.0.0.1 "$q" interrupt
	show
	[ "$status" -eq 0 ]
	oracle=$output
	[ "$oracle" = "connect -1 EINTR at once
writable True
SO_ERROR 0
b'greeting late\n'" ]
	run "${HY[@]}" bash -c "$(declare -f sigconnect); sigconnect vsock-3.local 7041 interrupt"
	show
	[ "$status" -eq 0 ]
	[ "$output" = "${oracle/late/greet}" ]
}

@test "a blocking hybrid connect under signals with SA_RESTART completes, as TCP's does" {
	start_signal_peers
	run sigconnect 127.0.0.1 "$q" restart
	show
	[ "$output" = "connect 0 - waited
b'greeting late\n'" ]
	run "${HY[@]}" bash -c "$(declare -f sigconnect); sigconnect vsock-3.local 7041 restart"
	show
	[ "$status" -eq 0 ]
	[ "$output" = "connect 0 - waited
b'greeting greet\n'" ]
	# Half an OK line when the signal comes: the rest is read, no EINTR.
	kill "$(<"$TEST_TMP/vmm.pid")"
	wait_gone "$TEST_TMP/vmm.pid"
	start_vmm vmm2 --mode split --port "7041=tcp:127.0.0.1:$p"
	run "${HY[@]}" bash -c "$(declare -f sigconnect); sigconnect vsock-3.local 7041 interrupt"
	show
	[ "$output" = "connect 0 - at once
b'greeting greet\n'" ]
}

@test "two servers binding one hybrid port at once: one of them gets EADDRINUSE, as on TCP (20 trials)" {
	local i out host ports
	# 20 free ports below the ephemeral range (32768-): a port next to one
	# free_tcp_port gave may be any connection's source port meanwhile,
	# and then both TCP racers lose (seen once in CI).
	read -ra ports < <(python3 -c '
import random, socket
ports = set()
while len(ports) < 20:
    p = random.randrange(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); ports.add(p)
    except OSError:
        pass
    s.close()
print(*ports)')
	racer='
import errno, os, socket, sys, time
host, port, barrier = sys.argv[1], int(sys.argv[2]), sys.argv[3]
open(os.path.join(barrier, str(os.getpid())), "w").close()
deadline = time.time() + 60 # every racer has started, then all bind at once
while len(os.listdir(barrier)) < 40 and time.time() < deadline:
    time.sleep(0.01)
l = socket.socket()
try:
    l.bind((host, port)); time.sleep(0.05); l.listen(); print("listening")
except OSError as e:
    print(errno.errorcode[e.errno])
time.sleep(2)'
	# 20 pairs, each pair on its own port; all 40 processes bind once all
	# have started, and hold their ports 2 s, well past the others' binds.
	for host in 127.0.0.1 vsock-3.local; do
		rm -rf "$TEST_TMP/barrier"; mkdir "$TEST_TMP/barrier"
		for ((i = 0; i < 20; i++)); do
			"${HY[@]}" python3 -c "$racer" $host "${ports[i]}" "$TEST_TMP/barrier" >"$TEST_TMP/$i.a" &
			"${HY[@]}" python3 -c "$racer" $host "${ports[i]}" "$TEST_TMP/barrier" >"$TEST_TMP/$i.b" &
		done
		wait
		for ((i = 0; i < 20; i++)); do
			out=$(sort "$TEST_TMP/$i.a" "$TEST_TMP/$i.b" | tr '\n' ' ')
			echo "trial $i $host: $out"
			[ "$out" = "EADDRINUSE listening " ]
		done
	done
	# Every server closed its listener: no file is left behind.
	! ls "$UDS"_* 2>/dev/null
}
