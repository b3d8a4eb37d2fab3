#!/usr/bin/env bats
# Unmodified TCP clients reaching native vsock servers by name.

load ../lib/common

setup() {
	require_vm
	common_setup
	printf 'HTTP/1.0 200 OK\r\nContent-Length: 13\r\n\r\nhello, vsock\n' >"$TEST_TMP/resp"
	start_vsock_http web 8080 "$TEST_TMP/resp"
	start_bg echo socat -d -d -t 5 VSOCK-LISTEN:7007,fork,reuseaddr EXEC:cat
	wait_for_log echo "listening on"
}
teardown() { common_teardown; }

@test "curl fetches a page from vsock-1.local and vsock-host.local" {
	run "$VSOCKIFY" curl -sS http://vsock-1.local:8080/
	[ "$status" -eq 0 ]
	[ "$output" = "hello, vsock" ]
	run "$VSOCKIFY" curl -sS http://vsock-host.local:8080/
	[ "$status" -eq 0 ]
	[ "$output" = "hello, vsock" ]
	run "$VSOCKIFY" curl -sS http://VSOCK-LOCAL.LOCAL.:8080/
	[ "$status" -eq 0 ]
	[ "$output" = "hello, vsock" ]
}

@test "without the shim the same curl cannot reach the vsock server" {
	run curl -sS --max-time 5 http://vsock-1.local:8080/
	[ "$status" -ne 0 ]
}

@test "curl -v shows sane Trying and Connected lines" {
	run "$VSOCKIFY" curl -sS -v http://vsock-1.local:8080/
	[ "$status" -eq 0 ]
	[[ $output == *"Trying 127.128.0.1:8080"* ]]
	[[ $output == *"Connected to vsock-1.local (127.128.0.1) port 8080"* ]]
	[[ $output != *"inet_ntop"* ]]
	[[ $output != *"getpeername"* ]]
}

@test "curl's connect really is AF_VSOCK, on the fd curl made (strace)" {
	run strace -f -e trace=socket,connect,dup3 "$VSOCKIFY" curl -sS http://vsock-1.local:8080/
	[ "$status" -eq 0 ]
	[[ $output == *"hello, vsock"* ]]
	inet_fd=$(grep -oP 'socket\(AF_INET, SOCK_STREAM, IPPROTO_TCP\) = \K[0-9]+' <<<"$output" | tail -1)
	[ -n "$inet_fd" ]
	vsock_fd=$(grep -oP 'socket\(AF_VSOCK, SOCK_STREAM[^)]*\) = \K[0-9]+' <<<"$output" | tail -1)
	[ -n "$vsock_fd" ]
	grep -E "connect\($vsock_fd, \{sa_family=AF_VSOCK, svm_cid=VMADDR_CID_LOCAL, svm_port=0x1f90" <<<"$output"
	grep -E "dup3\($vsock_fd, $inet_fd, " <<<"$output"
	# and no IP packet was ever attempted to the fake address
	! grep -E 'connect\([0-9]+, \{sa_family=AF_INET' <<<"$output"
}

@test "curl over IPv6 (curl -6) uses the IPv6 fake and still works" {
	run "$VSOCKIFY" curl -6 -sS -v http://vsock-1.local:8080/
	[ "$status" -eq 0 ]
	[[ $output == *"hello, vsock"* ]]
	[[ $output == *"Connected to vsock-1.local (100::7673:6f63:0:1) port 8080"* ]]
}

@test "blocking client: python create_connection, echo, getpeername/getsockname" {
	run preload python3 - <<'PY'
import socket
s = socket.create_connection(("vsock-1.local", 7007))
s.sendall(b"ping\n")
assert s.recv(100) == b"ping\n"
peer, local = s.getpeername(), s.getsockname()
print("peer", peer, "local", local)
assert peer == ("127.128.0.1", 7007), peer
assert local[0] == "127.128.0.1" and 0 < local[1] <= 65535, local
assert s.family == socket.AF_INET
print("domain", s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN))
print("protocol", s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL))
PY
	[ "$status" -eq 0 ]
	[[ $output == *"domain 2"* ]]
	[[ $output == *"protocol 6"* ]]
}

@test "non-blocking connect keeps EINPROGRESS and SO_ERROR semantics" {
	run preload python3 - <<'PY'
import errno, select, socket
def attempt(port):
    s = socket.socket()
    s.setblocking(False)
    rc = s.connect_ex(("127.128.0.1", port))
    assert rc in (0, errno.EINPROGRESS), rc
    select.select([], [s], [], 10)
    return rc, s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), s
rc, err, s = attempt(7007)
print("open port", errno.errorcode.get(rc, rc), err)
assert err == 0
assert s.getblocking() is False
s.send(b"x"); select.select([s], [], [], 10); assert s.recv(1) == b"x"
rc, err, s = attempt(7999)
print("closed port", errno.errorcode.get(rc, rc), errno.errorcode.get(err, err))
assert err == errno.ECONNREFUSED, err
PY
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"open port EINPROGRESS 0"* ]]
}

@test "AF_INET6 sockets: native IPv6 fake and IPv4-mapped fake both work" {
	run preload python3 - <<'PY'
import socket
s = socket.socket(socket.AF_INET6)
s.connect(("100::7673:6f63:0:1", 7007))
s.sendall(b"six"); assert s.recv(3) == b"six"
print("native", s.getpeername()[:2], s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN))
m = socket.socket(socket.AF_INET6)
m.connect(("::ffff:127.128.0.1", 7007))
m.sendall(b"map"); assert m.recv(3) == b"map"
print("mapped", m.getpeername()[:2])
PY
	[ "$status" -eq 0 ]
	[[ $output == *"native ('100::7673:6f63:0:1', 7007) 10"* ]]
	[[ $output == *"mapped ('::ffff:127.128.0.1', 7007)"* ]]
}

@test "getpeername/getsockname truncate like the kernel does" {
	run preload "$ROOT/build/helpers/addrcheck" vsock-1.local 7007
	[ "$status" -eq 0 ]
	shim_out=$output
	# the same program against a plain TCP server, without the shim
	start_bg tcp socat TCP-LISTEN:7008,bind=127.0.0.1,fork,reuseaddr EXEC:cat
	wait_for_tcp_port 7008
	run "$ROOT/build/helpers/addrcheck" 127.0.0.1 7008
	[ "$status" -eq 0 ]
	[ "$shim_out" = "$output" ]
	[[ $output == *"peer4 rc=0 len=16 family=2 untouched=1"* ]]
}

@test "the big 32-bit local port of a vsock client is folded into 49152-65535" {
	run preload python3 -c '
import socket
s = socket.create_connection(("vsock-1.local", 7007))
print(s.getsockname()[1])'
	[ "$status" -eq 0 ]
	[ "$output" -ge 1 ] && [ "$output" -le 65535 ]
}

@test "TCP socket options are accepted and read back after the swap" {
	run preload python3 - <<'PY'
import socket
s = socket.socket()
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)      # before connect
s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, b"\x05" + b"\0" * 15)
import struct
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 3))
rcvbuf_before = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
s.connect(("vsock-1.local", 7007))
print("nodelay", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
print("keepalive", s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
print("reuseaddr", s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR))
print("rcvbuf", s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == rcvbuf_before)
print("rcvtimeo", struct.unpack("ll", s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)))
print("linger", struct.unpack("ii", s.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 77)     # after connect
s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x10)
print("keepidle", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE))
print("tos", s.getsockopt(socket.IPPROTO_IP, socket.IP_TOS))
print("keepcnt default", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT))
try:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 0)
except OSError as e:
    print("bad keepidle", e.errno)
try:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
except OSError as e:
    print("v6only on inet4", e.errno)
PY
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"nodelay 1"* ]]
	[[ $output == *"keepalive 1"* ]]
	[[ $output == *"reuseaddr 1"* ]]
	[[ $output == *"rcvbuf True"* ]]
	[[ $output == *"rcvtimeo (5, 0)"* ]]
	[[ $output == *"linger (1, 3)"* ]]
	[[ $output == *"keepidle 77"* ]]
	[[ $output == *"tos 16"* ]]
	[[ $output == *"keepcnt default 9"* ]]
	[[ $output == *"bad keepidle 22"* ]]
	[[ $output == *"v6only on inet4 92"* ]]
}
