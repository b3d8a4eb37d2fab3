#!/usr/bin/env bats
# Debian's unmodified sshd and ssh/scp, end to end over vsock.  sshd runs in
# its default re-exec mode, so the accepted socket crosses an exec.

load ../lib/common

setup() {
	require_vm
	common_setup
	start_sshd vsock-any.local:2222
	SSH_OPTS+=(-o LogLevel=ERROR)
}
teardown() { common_teardown; }

@test "sshd listens on vsock-any.local (AF_VSOCK in the kernel)" {
	grep -q "Server listening on 127.255.255.255 port 2222" "$TEST_TMP/sshd.log"
	# a native vsock client sees the SSH banner
	run python3 -c '
import socket
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.settimeout(60); s.connect((1, 2222))
print(s.makefile("rb").readline().decode().strip())'
	[[ $output == SSH-2.0-OpenSSH* ]]
}

@test "ssh runs a command: vsockify ssh root@vsock-1.local 'echo ok'" {
	run "$VSOCKIFY" ssh -p 2222 "${SSH_OPTS[@]}" root@vsock-1.local 'echo ok'
	echo "$output"
	[ "$status" -eq 0 ]
	# root's shell rc files may print their own noise first
	[ "${lines[-1]}" = "ok" ]
}

@test "the sshd log names the client, with no UNKNOWN and no getnameinfo error" {
	run "$VSOCKIFY" ssh -p 2222 "${SSH_OPTS[@]}" root@vsock-host.local true
	[ "$status" -eq 0 ]
	cat "$TEST_TMP/sshd.log"
	grep -E "Connection from 127\.128\.0\.[12] port [0-9]+ on 127\.128\.0\.[12] port 2222" "$TEST_TMP/sshd.log"
	grep -E "Accepted publickey for root from 127\.128\.0\.[12] port [0-9]+" "$TEST_TMP/sshd.log"
	! grep -Ei "UNKNOWN|getnameinfo|get_sock_port|getpeername|getsockname" "$TEST_TMP/sshd.log"
}

@test "scp round-trips a 10 MB random file with an identical sha256" {
	head -c 10485760 /dev/urandom >"$TEST_TMP/payload"
	run "$VSOCKIFY" scp -P 2222 "${SSH_OPTS[@]}" "$TEST_TMP/payload" "root@vsock-1.local:$TEST_TMP/remote"
	[ "$status" -eq 0 ]
	run "$VSOCKIFY" scp -P 2222 "${SSH_OPTS[@]}" "root@vsock-1.local:$TEST_TMP/remote" "$TEST_TMP/back"
	[ "$status" -eq 0 ]
	want=$(sha256sum <"$TEST_TMP/payload")
	[ "$(sha256sum <"$TEST_TMP/remote")" = "$want" ]
	[ "$(sha256sum <"$TEST_TMP/back")" = "$want" ]
}

@test "ssh to a CID that does not exist fails with a sensible message" {
	run "$VSOCKIFY" ssh -p 2222 "${SSH_OPTS[@]}" root@vsock-9.local true
	[ "$status" -eq 255 ]
	[[ $output == *"connect to host vsock-9.local port 2222: No route to host"* ]]
}

@test "ssh to a closed port says Connection refused" {
	run "$VSOCKIFY" ssh -p 2299 "${SSH_OPTS[@]}" root@vsock-1.local true
	[ "$status" -eq 255 ]
	[[ $output == *"port 2299: Connection refused"* ]]
}
