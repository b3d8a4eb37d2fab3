#!/usr/bin/env bats
# Hybrid vsock end to end, in the test VM: tests/helpers/hybrid_vmm.py plays
# the Firecracker / Cloud Hypervisor VMM, bridging its Unix socket protocol
# (PATH, "CONNECT P\n" / "OK n\n", PATH_P) to real AF_VSOCK here, where
# CID 1 loops back.  So a hybrid client (a `hybrid 3 PATH` rule: Unix
# socket to the VMM) reaches a real vsock server, and a real vsock client
# reaches a hybrid listener (a Unix listener at PATH_P).  vsock ports
# 9601..9699.

bats_require_minimum_version 1.5.0
load ../lib/common
load ../lib/hybrid

DIAL=$HELPERS/dial.py

setup() {
	require_vm
	common_setup
	hybrid_setup 300000
}
teardown() { common_teardown; }

# ssh_setup LISTEN: sshd_config (tests/lib/common.bash), quiet client.
ssh_setup() {
	sshd_config "$1"
	SSH_OPTS+=(-o LogLevel=ERROR)
}

# ---- host -> guest: a hybrid client reaches a real vsock server ---------------

@test "socat hybrid client -> VMM -> real AF_VSOCK echo server: 2 MB byte-exact, half-close" {
	# socat+cat, not echo_server.py: that one drops what a full socket refuses
	start_bg cat socat -d -d VSOCK-LISTEN:9601,fork,reuseaddr EXEC:cat
	wait_for_log cat "listening on"
	start_vmm vmm --port 9601=vsock:1:9601
	head -c 2000000 /dev/urandom >"$TEST_TMP/in"
	run through timeout 120 "${HY[@]}" socat -b 65536 - TCP:vsock-3.local:9601
	show
	[ "$status" -eq 0 ]
	cmp "$TEST_TMP/in" "$TEST_TMP/out"
	grep -q "got line: CONNECT 9601" "$TEST_TMP/vmm.log"
}

@test "python client sees TCP: peer 127.128.0.3, local 127.128.0.2, an echo over the bridge" {
	start_echo echo vsock 9602
	start_vmm vmm --port 9602=vsock:1:9602
	run "${HY[@]}" python3 "$DIAL" vsock-3.local 9602 "through the bridge" 18
	show
	[ "$status" -eq 0 ]
	[ "$output" = "peer 127.128.0.3 9602
local 127.128.0.2
got through the bridge" ]
}

@test "curl hybrid client -> VMM -> http.server on real vsock (the ordinary shim), page exact" {
	start_bg web "$VSOCKIFY" python3 -u -m http.server --bind vsock-any.local --directory "$TEST_TMP/www" 9603
	wait_for_log web "Serving HTTP"
	start_vmm vmm --port 80=vsock:1:9603
	run "${HY[@]}" curl -sS -o "$TEST_TMP/got" -w '%{remote_ip}:%{remote_port}' http://vsock-3.local/file
	show
	[ "$status" -eq 0 ]
	[ "$output" = "127.128.0.3:80" ]
	cmp "$TEST_TMP/got" "$TEST_TMP/www/file"
	# the guest's server saw a vsock peer: the bridge, from this VM's CID
	grep -E '^127\.128\.0\.[12] - - .*"GET /file' "$TEST_TMP/web.log"
}

@test "one process, two kinds: vsock-3.local goes to the VMM, vsock-1.local to real vsock" {
	start_echo echo vsock 9604
	start_vmm vmm --port 9605=vsock:1:9604
	run "${HY[@]}" python3 -c '
import os, socket
for host, port in (("vsock-3.local", 9605), ("vsock-1.local", 9604)):
    s = socket.create_connection((host, port), timeout=30)
    ino = os.readlink("/proc/self/fd/%d" % s.fileno())[len("socket:["):-1]
    unix = any(l.split()[6] == ino for l in open("/proc/net/unix").readlines()[1:])
    s.sendall(host.encode())
    print(host, s.getpeername(), "unix" if unix else "not-unix", s.recv(100).decode())'
	show
	[ "$status" -eq 0 ]
	[ "$output" = "vsock-3.local ('127.128.0.3', 9605) unix vsock-3.local
vsock-1.local ('127.128.0.1', 9604) not-unix vsock-1.local" ]
	[ "$(grep -c "got line: CONNECT" "$TEST_TMP/vmm.log")" -eq 1 ]
}

@test "ssh hybrid client -> VMM (banner in the OK segment) -> sshd on real vsock; scp 2 MB" {
	ssh_setup vsock-any.local:9606
	start_bg sshd "$VSOCKIFY" /usr/sbin/sshd -D -e -f "$TEST_TMP/sshd_config"
	wait_for_log sshd "Server listening on"
	start_vmm vmm --mode with-data --port 22=vsock:1:9606
	run timeout 120 "${HY[@]}" ssh "${SSH_OPTS[@]}" root@vsock-3.local 'echo ok'
	show
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = ok ]
	grep -q "with-data: sent b'OK [0-9]*\\\\n' and [1-9][0-9]* service bytes in one write" "$TEST_TMP/vmm.log"
	head -c 2000000 /dev/urandom >"$TEST_TMP/payload"
	run timeout 120 "${HY[@]}" scp "${SSH_OPTS[@]}" "$TEST_TMP/payload" "root@vsock-3.local:$TEST_TMP/remote"
	show
	[ "$status" -eq 0 ]
	cmp "$TEST_TMP/payload" "$TEST_TMP/remote"
}

# ---- guest -> host: a real vsock client reaches a hybrid listener -------------

@test "http.server bound on vsock-3.local:9610 (a Unix listener) <- VMM <- a real AF_VSOCK client" {
	start_bg srv "${HY[@]}" python3 -u -m http.server --bind vsock-3.local --directory "$TEST_TMP/www" 9610
	wait_for_sock "$UDS"_9610
	# the bridge takes vsock port 9610 itself: the hybrid listener did not
	start_vmm vmm --guest 9610=vsock:9610
	run python3 -c '
import socket
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.settimeout(60)
s.connect((1, 9610))
s.sendall(b"GET /file HTTP/1.0\r\n\r\n")
buf = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    buf += d
head, _, body = buf.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode())
open("'"$TEST_TMP"'/got", "wb").write(body)'
	show
	[ "$status" -eq 0 ]
	[ "$output" = "HTTP/1.0 200 OK" ]
	cmp "$TEST_TMP/got" "$TEST_TMP/www/file"
	grep -E '^127\.128\.0\.3 - - .*"GET /file HTTP/1\.0" 200' "$TEST_TMP/srv.log"
}

@test "socat TCP-LISTEN on vsock-3.local <- VMM <- socat VSOCK-CONNECT: 1 MB echoed, three times" {
	start_bg srv "${HY[@]}" socat -d -d TCP-LISTEN:9611,bind=vsock-3.local,fork,reuseaddr EXEC:cat
	wait_for_sock "$UDS"_9611
	start_vmm vmm --guest 9611=vsock:9611
	head -c 1000000 /dev/urandom >"$TEST_TMP/in"
	local i
	for i in 1 2 3; do
		run through timeout 120 socat -b 65536 - VSOCK-CONNECT:1:9611
		show
		[ "$status" -eq 0 ]
		cmp "$TEST_TMP/in" "$TEST_TMP/out"
	done
	[ "$(grep -c "accepting connection from AF=2 127\.128\.0\.3:" "$TEST_TMP/srv.log")" -eq 3 ]
}

@test "sshd (re-exec mode) as a hybrid listener on vsock-3.local <- VMM <- ssh over VSOCK-CONNECT" {
	ssh_setup vsock-3.local:9612
	start_bg sshd "${HY[@]}" /usr/sbin/sshd -D -e -f "$TEST_TMP/sshd_config"
	wait_for_log sshd "Server listening on"
	[[ -S "$UDS"_9612 ]]
	start_vmm vmm --guest 9612=vsock:9612
	run timeout 120 ssh "${SSH_OPTS[@]}" -o ProxyCommand='socat - VSOCK-CONNECT:1:9612' root@guest 'echo ok'
	show
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = ok ]
	cat "$TEST_TMP/sshd.log"
	grep -q "Server listening on 127.128.0.3 port 9612" "$TEST_TMP/sshd.log"
	grep -E "Connection from 127\.128\.0\.3 port [0-9]+ on 127\.128\.0\.[0-9]+ port 9612" "$TEST_TMP/sshd.log"
	grep -E "Accepted publickey for root from 127\.128\.0\.3 port [0-9]+" "$TEST_TMP/sshd.log"
	run ! grep -Ei "UNKNOWN|getnameinfo|get_sock_port|getpeername|getsockname" "$TEST_TMP/sshd.log"
}

@test "both directions at once: hybrid curl -> VMM -> vsock -> VMM -> hybrid http.server" {
	# guest side: a second path of the same VMM bridges vsock 9620 to the hybrid listener
	start_bg srv "${HY[@]}" python3 -u -m http.server --bind vsock-3.local --directory "$TEST_TMP/www" 9621
	wait_for_sock "$UDS"_9621
	start_vmm vmm --port 8080=vsock:1:9620 --guest 9621=vsock:9620
	run "${HY[@]}" curl -sS -o "$TEST_TMP/got" http://vsock-3.local:8080/file
	show
	[ "$status" -eq 0 ]
	cmp "$TEST_TMP/got" "$TEST_TMP/www/file"
}
