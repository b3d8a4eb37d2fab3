#!/usr/bin/env bats
# Quick mode of the benchmark (make bench): every path moves correct data.
#   A  vsbench --raw-vsock -> CID 1
#   B  plain TCP vsbench under LD_PRELOAD -> vsock-1.local
#   C  plain TCP vsbench -> 127.0.0.1 -> socat -> VSOCK-CONNECT:1
# The server is the raw-vsock vsbench server; it verifies every bulk byte.

load ../lib/common

setup() {
	require_vm
	common_setup
	BENCH=$ROOT/build/helpers/vsbench
	[[ -x $BENCH ]] || { echo "build/helpers/vsbench missing: run make" >&2; return 1; }
	start_bg server "$BENCH" server --raw-vsock --port 5301
	wait_for_log server '^listening'
}
teardown() { common_teardown; }

start_relay() {
	start_bg relay socat TCP-LISTEN:7301,bind=127.0.0.1,fork,reuseaddr VSOCK-CONNECT:1:5301
	wait_for_tcp_port 7301
}

# client PATH TEST [ARGS...]
client() {
	local path=$1 test=$2
	shift 2
	case $path in
		A) "$BENCH" "$test" --quick --raw-vsock --host 1 --port 5301 "$@" ;;
		B) LD_PRELOAD=$LIB "$BENCH" "$test" --quick --host vsock-1.local --port 5301 "$@" ;;
		C) "$BENCH" "$test" --quick --host 127.0.0.1 --port 7301 "$@" ;;
	esac
}

# check_path PATH: bulk, pingpong and connrate all verified, and the server
# saw the bulk bytes intact.
check_path() {
	local path=$1 t
	for t in bulk pingpong connrate; do
		run client "$path" "$t"
		echo "$path $t: status $status: $output"
		[ "$status" -eq 0 ]
		[[ $output == *"test=$t "*"verified=1"* ]]
	done
	grep -q 'server test=bulk bytes=4194304 verified=1' "$TEST_TMP/server.log"
	run grep -c 'verified=0' "$TEST_TMP/server.log"
	[ "$output" = 0 ]
}

@test "bench path A (raw AF_VSOCK) moves correct data" {
	check_path A
}

@test "bench path B (TCP client under vsockify) moves correct data, over vsock" {
	check_path B
	# it really was vsock: nothing listens on TCP port 5301, and without the
	# library the same client is refused
	run grep -c "$(printf ':%04X ' 5301)" /proc/net/tcp
	[ "$output" = 0 ]
	run "$BENCH" pingpong --quick --host 127.128.0.1 --port 5301
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"Connection refused"* ]]
}

@test "bench path C (TCP client via socat relay) moves correct data" {
	start_relay
	check_path C
}

@test "bench scale: many live shimmed connections (quick)" {
	start_bg hold "$BENCH" server --raw-vsock --hold --port 5302
	wait_for_log hold '^listening'
	run env LD_PRELOAD="$LIB" "$BENCH" scale --quick --counts 10,40 --host vsock-1.local --port 5302 \
		--alt-raw 1 --probe-batches 3
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"test=scale live=40 "*"verified=1"* ]]
	# three shimmed batches, each paired with one to raw vsock from the same process
	[[ $output =~ live=40\ .*probe_us=[0-9.]+,[0-9.]+,[0-9.]+\ alt_us=[0-9.]+,[0-9.]+,[0-9.]+\  ]]
}

@test "connect-cost.sh: a supervised connection call by call, on all four paths" {
	run env CONNS=30 "$ROOT/tests/bench/connect-cost.sh" 1
	echo "$output"
	[ "$status" -eq 0 ]
	local p
	for p in A S T U; do
		[[ $output =~ path=$p\ round=1\ test=connlat\ conns=30\ dial_p50_us=[0-9.]+\ .*verified=1 ]]
	done
	[[ $output == *"S-A dial: "* ]]
	[[ $output == *"U-T dial: "* ]]
}

@test "a corrupted bulk stream is caught: the client exits non-zero" {
	# a fake server that answers the bulk verdict with a failure status
	start_bg liar python3 -c '
import socket, struct
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.bind((socket.VMADDR_CID_ANY, 5303)); s.listen(); print("listening", flush=True)
c, _ = s.accept()
assert c.recv(1) == b"B"
n = struct.unpack("=Q", c.recv(8, socket.MSG_WAITALL))[0]
got = 0
while got < n:
    b = c.recv(65536)
    if not b: break
    got += len(b)
c.sendall(struct.pack("=QQ", got, 1))'
	wait_for_log liar '^listening'
	run "$BENCH" bulk --quick --raw-vsock --host 1 --port 5303
	echo "$output"
	[ "$status" -eq 3 ]
	[[ $output == *"FAIL"* ]]
	[[ $output != *"verified=1"* ]]
}

@test "the server catches corrupted bulk data and the verdict says so" {
	run python3 -c '
import socket, struct
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.connect((1, 5301))
n = 1 << 20
s.sendall(b"B" + struct.pack("=Q", n) + bytes(n))   # zeros, not the pattern
got, status = struct.unpack("=QQ", s.recv(16, socket.MSG_WAITALL))
print("got", got, "status", status)'
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == "got 1048576 status 1" ]]
	grep -q 'server test=bulk bytes=1048576 verified=0' "$TEST_TMP/server.log"
}
