# Shared by the hybrid vsock suites (tests/host/hybrid.bats, tests/vm/hybrid.bats):
# a VMM stand-in (tests/helpers/hybrid_vmm.py) on $UDS, and CID 3 behind it.

VMM=$HELPERS/hybrid_vmm.py

# hybrid_setup BYTES: no rules from the environment; UDS, the wrapper with
# --hybrid 3=$UDS in HY, and a www/file of about BYTES * 4/3 bytes.
hybrid_setup() {
	no_rules_from_environment || return 1
	UDS=$TEST_TMP/v.sock
	HY=("$VSOCKIFY" --hybrid "3=$UDS")
	mkdir -p "$TEST_TMP/www"
	head -c "$1" /dev/urandom | base64 >"$TEST_TMP/www/file"
}

# show: what the last run printed (shown by bats when a test fails).
show() { printf 'status=%s\n--- output\n%s\n' "$status" "$output"; }

# start_vmm NAME ARGS...: hybrid_vmm.py --uds $UDS ARGS, once it listens.
start_vmm() {
	local name=$1
	shift
	start_bg "$name" python3 "$VMM" --uds "$UDS" "$@"
	wait_for_log "$name" "^listening"
}

# through CMD...: CMD <$TEST_TMP/in >$TEST_TMP/out (stderr in $output).
through() {
	"$@" <"$TEST_TMP/in" >"$TEST_TMP/out"
}

# wait_for_sock PATH [SECONDS]: until PATH is a socket.
wait_for_sock() {
	local i
	for ((i = 0; i < ${2:-30} * 10; i++)); do
		[[ -S $1 ]] && return 0
		sleep 0.1
	done
	echo "no socket at $1" >&2
	return 1
}
