#!/usr/bin/env bats
# Real programs under valgrind with the shim: no invalid access, no
# uninitialised use, no definite leak caused by the hooks.

load ../lib/common

setup() {
	require_vm
	common_setup
	printf 'HTTP/1.0 200 OK\r\n\r\nvalgrind ok\n' >"$TEST_TMP/resp"
	start_vsock_http web 8090 "$TEST_TMP/resp"
}
teardown() { common_teardown; }

VG=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
	--show-leak-kinds=definite --trace-children=no)

@test "curl through the shim is valgrind-clean" {
	run env LD_PRELOAD="$LIB" "${VG[@]}" curl -sS http://vsock-1.local:8090/
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"valgrind ok"* ]]
}

@test "resolver hooks (getent, malformed names, reverse lookups) are valgrind-clean" {
	run env LD_PRELOAD="$LIB" VSOCKIFY_LOG=debug "${VG[@]}" getent ahosts vsock-3.local
	echo "$output"
	[ "$status" -eq 0 ]
	run env LD_PRELOAD="$LIB" VSOCKIFY_LOG=debug "${VG[@]}" getent hosts 127.128.0.3
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"vsock-3.local"* ]]
	run env LD_PRELOAD="$LIB" VSOCKIFY_LOG=debug "${VG[@]}" getent ahosts vsock-3x.local
	[ "$status" -eq 2 ]
}

@test "a python vsock server under valgrind accepts and names its client" {
	start_bg srv env LD_PRELOAD="$LIB" PYTHONMALLOC=malloc "${VG[@]}" python3 -u -c '
import socket
s = socket.socket(); s.bind(("vsock-any.local", 8091)); s.listen()
print("listening", flush=True)
c, a = s.accept(); c.sendall(repr(a).encode()); c.close()'
	wait_for_log srv listening 120
	# valgrind on a TCG VM is slow: give the reply time, and say what happened.
	run socat -T 120 - VSOCK-CONNECT:1:8091 </dev/null
	echo "client: status $status, output: $output"
	[[ $output == *"('127.128.0.1', "* ]] || { cat "$TEST_TMP/srv.log"; false; }
	for _ in $(seq 300); do kill -0 "$(<"$TEST_TMP/srv.pid")" 2>/dev/null || break; sleep 0.1; done
	local server_rc=0
	wait "$(<"$TEST_TMP/srv.pid")" || server_rc=$?
	cat "$TEST_TMP/srv.log"
	[ "$server_rc" -eq 0 ]
}
