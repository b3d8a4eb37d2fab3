#!/usr/bin/env bats
# The stress program (tests/stress/) in its quick form: threads recycling fd
# numbers between vsock, TCP, Unix sockets and files, under dup2/close_range,
# fork+exec and a signal storm.  Every defect counter must stay 0.

load ../lib/common

setup() { require_vm; }

@test "stress --quick: every defect counter is 0" {
	run "$ROOT/tests/stress/run.sh" --quick
	grep -E '^(counter|stat) ' <<<"$output" || true
	if [ "$status" -ne 0 ]; then
		echo "$output" | grep -vE '^(counter|stat) '
	fi
	! grep -Eq '^counter [a-z_]+ [1-9]' <<<"$output"
	[ "$(grep -c '^counter ' <<<"$output")" -ge 5 ]
	[ "$status" -eq 0 ]
}

@test "stress --quick --supervised: the static build under the supervisor, every counter 0" {
	run "$ROOT/tests/stress/run.sh" --quick --supervised
	grep -E '^(counter|stat|stress: skipped) ' <<<"$output" || true
	if [ "$status" -ne 0 ]; then
		echo "$output" | grep -vE '^(counter|stat) '
	fi
	! grep -Eq '^counter [a-z_]+ [1-9]' <<<"$output"
	[ "$(grep -c '^counter ' <<<"$output")" -ge 5 ]
	# Translated by the supervisor: children and vsock connects happened.
	grep -Eq '^stat vsock_connects [1-9]' <<<"$output"
	[ "$status" -eq 0 ]
}

@test "stress --quick, static build without the supervisor: it fails (the control)" {
	[[ -x $ROOT/build/stress/stress-static ]] || { echo 'build/stress/stress-static is missing: run make' >&2; return 1; }
	run bash -c "ulimit -n 4096; '$ROOT/build/stress/stress-static' --numeric --supervisor-limits --threads 2 --ops 100"
	[ "$status" -ne 0 ]
	grep -Eq '^counter unexpected_errno [1-9]' <<<"$output"
}
