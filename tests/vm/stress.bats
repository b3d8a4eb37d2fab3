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
