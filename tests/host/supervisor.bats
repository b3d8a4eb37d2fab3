#!/usr/bin/env bats
# The supervisor on the host, under the no-vsock filter: the way in chosen
# for each kind of program, pass-through of real TCP, exit statuses,
# refusals, and the library's exec hand-off.  Everything vsock is in
# tests/vm/supervisor.bats.

load ../lib/common
bats_require_minimum_version 1.5.0

setup() {
	common_setup
	printf 'supervised ok\n' >"$TEST_TMP/index.html"
	PORT=$(free_tcp_port)
	start_bg web python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$TEST_TMP"
	wait_for_tcp_port "$PORT"
}
teardown() { common_teardown; }

@test "--check CMD names the way in: library, supervisor, or both" {
	run "$VSOCKIFY" --check /bin/true
	[[ $output == "/bin/true: the preload library (dynamically linked"* ]]
	# A second line names the library a preloaded program gets (musl.bats).
	[ "${lines[1]}" = "/bin/true: library $LIB (a glibc program)" ]
	run "$VSOCKIFY" --check busybox
	[ "$output" = "/usr/bin/busybox: the supervisor (statically linked)" ] ||
		[ "$output" = "/bin/busybox: the supervisor (statically linked)" ]
	[ "${#lines[@]}" -eq 1 ] # the supervisor alone: no library line
	run "$VSOCKIFY" --check --supervise /bin/true
	[[ ${lines[0]} == *"the preload library and the supervisor (--supervise; the library too, for its names)" ]]
	run "$VSOCKIFY" --check --preload busybox
	[[ ${lines[0]} == *"the preload library (--preload; a static program ignores it)" ]]
	run "$VSOCKIFY" --check "$ROOT/tests/demo.sh"
	[[ ${lines[0]} == *"the preload library (not an ELF program"* ]]
}

@test "real TCP under the supervisor is untouched (busybox-static wget to 127.0.0.1)" {
	run busybox wget -q -O - "http://127.0.0.1:$PORT/index.html"
	local plain=$output
	run "$VSOCKIFY" busybox wget -q -O - "http://127.0.0.1:$PORT/index.html"
	[ "$status" -eq 0 ]
	[ "$output" = "$plain" ]
	[ "$output" = "supervised ok" ]
}

@test "Linux 6.6 and later: the supervisor asks for synchronous wake-ups" {
	local major minor want
	IFS=. read -r major minor _ <<<"$(uname -r)"
	want="not available"
	((major > 6 || (major == 6 && minor >= 6))) && want=on
	VSOCKIFY_LOG=debug run "$VSOCKIFY" --supervise busybox true
	[ "$status" -eq 0 ]
	[[ $output == *"supervisor: synchronous wake-ups (Linux 6.6): $want"* ]]
}

@test "the program's exit status, and 128+N after signal N" {
	run "$VSOCKIFY" busybox sh -c 'exit 9'
	[ "$status" -eq 9 ]
	run "$VSOCKIFY" busybox sh -c 'kill -USR1 $$'
	[ "$status" -eq 138 ]
	run -127 "$VSOCKIFY" --supervise /nonexistent/prog
	[ "$status" -eq 127 ]
}

@test "a process already under a supervisor is refused with exit status 2" {
	run "$VSOCKIFY" --supervise "$VSOCKIFY" --supervise busybox true
	[ "$status" -eq 2 ]
	[[ $output == *"already under a seccomp supervisor"*"--preload"* ]]
}

@test "\$(vsockify daemon) returns: the supervisor keeps no caller's pipe open" {
	local start=$SECONDS
	out=$("$VSOCKIFY" busybox sh -c 'busybox sleep 40 >/dev/null 2>&1 & echo $! >'"$TEST_TMP"'/daemon.pid; echo started')
	# Before the fix, $(...) waited for the supervisor, which serves the
	# sleeping daemon for 40 s.
	[ $((SECONDS - start)) -lt 30 ]
	[ "$out" = "started" ]
}

@test "the library hands an exec'd static program to the supervisor, with its argv[0]" {
	ln -s /bin/busybox "$TEST_TMP/wget"
	VSOCKIFY_LOG=debug run "$VSOCKIFY" bash -c "'$TEST_TMP/wget' -q -O - http://127.0.0.1:$PORT/index.html"
	[ "$status" -eq 0 ]
	[[ $output == *"handed to the supervisor"* ]]
	[[ $output == *"supervising"* ]]
	# The program's own last line (the supervisor's log lines may follow).
	[[ $(grep -v '^vsockify\[' <<<"$output" | tail -n 1) == "supervised ok" ]]
	# posix_spawn and execl (python3, script) hand it over as well.
	VSOCKIFY_LOG=debug run "$VSOCKIFY" python3 -c "import os; pid = os.posix_spawn('$TEST_TMP/wget', ['wget', '-q', '-O', '-', 'http://127.0.0.1:$PORT/index.html'], os.environ); os.waitpid(pid, 0)"
	[[ $output == *"exec $TEST_TMP/wget: a static or Go program, handed to the supervisor"* ]]
	[[ $(grep -v '^vsockify\[' <<<"$output" | tail -n 1) == "supervised ok" ]]
	ln -s /bin/busybox "$TEST_TMP/sh"
	SHELL="$TEST_TMP/sh" VSOCKIFY_LOG=debug run "$VSOCKIFY" script -qec true /dev/null
	[[ $output == *"supervisor: supervising $TEST_TMP/sh "* ]]
	# The user's other preloads are the program's again.
	other=$(ls /lib/x86_64-linux-gnu/libm.so.6)
	run env LD_PRELOAD="$other" "$VSOCKIFY" bash -c 'busybox sh -c "echo \$LD_PRELOAD"'
	[ "$output" = "$LIB $other" ]
}
