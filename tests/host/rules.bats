#!/usr/bin/env bats
# Rules (docs/rules.md) on the host: the wrapper's --check and its
# normalised output, every kind of bad input with its exact place
# (FILE:LINE, VSOCKIFY_RULES: rule N, --rule N), a bad rule stopping the
# wrapper before it runs anything, the order of the sources, name rules
# (resolution only) and connect/listen rules leaving other traffic alone.
#
# No vsock traffic here: only 127.x addresses, and the few dials that do
# match a rule must die under the novsock guard (SIGSYS), which proves that
# the rule matched.  Name lookups that might miss run in a network
# namespace of their own (unshare -n), so a miss never reaches DNS.

bats_require_minimum_version 1.5.0
load ../lib/common

SIGSYS_STATUS=159 # 128 + SIGSYS
DIAL=$HELPERS/dial.py

setup() {
	common_setup
	no_rules_from_environment
}
teardown() { common_teardown; }

# check ARGS...: vsockify --check ARGS, stdout in $output, stderr in $stderr.
check() { run --separate-stderr "$VSOCKIFY" --check "$@"; }

# show: what the last run printed (shown by bats when a test fails).
show() { printf 'status=%s\n--- stdout\n%s\n--- stderr\n%s\n' "$status" "$output" "${stderr:-}"; }

# nonet CMD...: CMD in a new network namespace (no DNS can be reached).
nonet() {
	unshare -n "$@"
}
need_nonet() {
	unshare -n true 2>/dev/null || skip "unshare -n is not available (name lookups that miss would reach DNS)"
}

# gai NAME [FAMILY]: getaddrinfo(NAME, 80) under the library, one answer a line.
gai() {
	nonet env LD_PRELOAD="$LIB" python3 -c '
import socket, sys
fam = int(sys.argv[2]) if len(sys.argv) > 2 else 0
try:
    for f, t, p, c, sa in socket.getaddrinfo(sys.argv[1], 80, fam, socket.SOCK_STREAM):
        print(f.name, sa[0], sa[1])
except socket.gaierror as e:
    print("gaierror", e.errno)' "$@"
}

# serve_tcp NAME PORT: a TCP server on 127.0.0.1:PORT (never shimmed) that
# greets each client with NAME.
serve_tcp() {
	start_bg "$1" socat -d -d TCP4-LISTEN:"$2",bind=127.0.0.1,fork,reuseaddr SYSTEM:"echo $1"
	wait_for_log "$1" "listening on"
}

# ---- --check: the effective table, normalised ------------------------------

@test "--check prints the documented examples in normalised form" {
	cat >"$TEST_TMP/rules.conf" <<-'EOF'
		# the examples of docs/rules.md, with keywords, case, blanks and comments
		name    DB.Internal.        vsock:host     # exact host name

		   name	*.Guests.EXAMPLE	vsock:3
		connect 10.0.2.2:5432       vsock:2:5432   # one address and port
		connect 192.0.2.7           vsock:3        # every port
		connect [FD00:0:0::5]:80    vsock:3:8080
		listen  0.0.0.0:8080        vsock:any:8080
		listen  *:9000              vsock:any
		connect 10.0.2.3:1          vsock:hypervisor:65535
		connect 10.0.2.4:65535      vsock:local:1
		connect 10.0.2.5            vsock:4294967294
		listen  *                   vsock:any
		connect 10.0.2.6:80         vsock:0000007
	EOF
	check -c "$TEST_TMP/rules.conf"
	show
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "$output" = "name db.internal vsock:2
name *.guests.example vsock:3
connect 10.0.2.2:5432 vsock:2:5432
connect 192.0.2.7 vsock:3
connect [fd00::5]:80 vsock:3:8080
listen 0.0.0.0:8080 vsock:any:8080
listen *:9000 vsock:any
connect 10.0.2.3:1 vsock:0:65535
connect 10.0.2.4:65535 vsock:1:1
connect 10.0.2.5 vsock:4294967294
listen * vsock:any
connect 10.0.2.6:80 vsock:7" ]
}

@test "--check: the same rules through -r and VSOCKIFY_RULES; no rules at all prints nothing" {
	check -r 'name  DB.Internal.  vsock:host' -r '  connect 10.0.2.2:5432 vsock:2:5432  '
	show
	[ "$status" -eq 0 ]
	[ "$output" = $'name db.internal vsock:2\nconnect 10.0.2.2:5432 vsock:2:5432' ]
	VSOCKIFY_RULES='name  DB.Internal.  vsock:host;connect 10.0.2.2:5432 vsock:2:5432 ;  listen *:9000 vsock:any' check
	show
	[ "$status" -eq 0 ]
	[ "$output" = $'name db.internal vsock:2\nconnect 10.0.2.2:5432 vsock:2:5432\nlisten *:9000 vsock:any' ]
	check
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ -z "$stderr" ]
	: >"$TEST_TMP/empty.conf"
	check -c "$TEST_TMP/empty.conf"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "VSOCKIFY_RULES: ';' or newlines separate rules, '#' runs to the next separator, pieces count from 1" {
	printf '%s\n' '# a file' 'name DB.Internal. vsock:host   # a comment' '' 'connect [fd00::5]:80 vsock:3:8080' \
		'listen *:9000 vsock:any' >"$TEST_TMP/f.conf"
	check -c "$TEST_TMP/f.conf"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 3 ]
	want=$output
	VSOCKIFY_RULES=$(cat "$TEST_TMP/f.conf") check
	show
	[ "$status" -eq 0 ]
	[ "$output" = "$want" ]
	VSOCKIFY_RULES=$'name a.example vsock:1\n# a comment; connect 10.0.2.2:80 vsock:1;;\nlisten *:9000 vsock:any' check
	show
	[ "$status" -eq 0 ]
	[ "$output" = $'name a.example vsock:1\nconnect 10.0.2.2:80 vsock:1\nlisten *:9000 vsock:any' ]
	# pieces: 1 the name rule, 2 the comment, 3 the connect rule, 4 the bad one
	VSOCKIFY_RULES=$'name a.example vsock:1\n# a comment; connect 10.0.2.2:80 vsock:1\nconnect 10.0.2.2:0 vsock:1' check
	show
	[ "$status" -eq 2 ]
	[[ $stderr == *"VSOCKIFY_RULES: rule 4: "* ]]
	[ "$(grep -c 'rule [0-9]*: ' <<<"$stderr")" -eq 1 ]
}

@test "IPv6 addresses always in brackets: [fd00::5] is every port, a bare fd00::5 is an error" {
	check -r 'connect [fd00::5] vsock:1' -r 'connect [fd00::5:80] vsock:1' -r 'connect [fd00::5]:80 vsock:1' \
		-r 'listen [::] vsock:any' -r 'listen [::ffff:10.0.2.2]:80 vsock:any'
	show
	[ "$status" -eq 0 ]
	# [fd00::5] (every port) and [fd00::5:80] (another address, every port)
	[ "$output" = "connect [fd00::5] vsock:1
connect [fd00::5:80] vsock:1
connect [fd00::5]:80 vsock:1
listen [::] vsock:any
listen [::ffff:10.0.2.2]:80 vsock:any" ]
	# fd00::5:80 could be an address or an address and a port
	refused 'connect fd00::5 vsock:1'
	refused 'connect fd00::5:80 vsock:1'
	refused 'listen :: vsock:any'
	refused 'listen ::1:80 vsock:any'
}

@test "--check output read back as a file gives the same output (it is the normal form)" {
	cat >"$TEST_TMP/in.conf" <<-'EOF'
		name DB.Internal. vsock:host
		name *.Guests.Example vsock:hypervisor
		connect 192.0.2.7 vsock:local
		connect [FD00::0:5]:80 vsock:3:8080
		connect [fd00::7] vsock:3
		connect [FD00::5:80] vsock:9
		connect 10.0.2.2:5432 vsock:2:5432
		listen [::]:8443 vsock:any:443
		listen 0.0.0.0:8080 vsock:any
		listen *:9000 vsock:any:9001
	EOF
	check -c "$TEST_TMP/in.conf"
	show
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 10 ]
	printf '%s\n' "$output" >"$TEST_TMP/once.conf"
	check -c "$TEST_TMP/once.conf"
	[ "$status" -eq 0 ]
	diff "$TEST_TMP/once.conf" <(printf '%s\n' "$output")
}

# ---- bad input ----------------------------------------------------------------

GOOD='connect 127.0.0.1:1 vsock:1'

# refused RULE: RULE is refused by every route, with its place in each
# message, and the wrapper never runs the command.
refused() {
	local rule=$1 f=$TEST_TMP/bad.conf
	echo "# rule: $rule"
	rm -f "$TEST_TMP/ran"
	# -r: the wrapper runs nothing
	run --separate-stderr "$VSOCKIFY" -r "$GOOD" -r "$rule" touch "$TEST_TMP/ran"
	show
	[ "$status" -eq 2 ]
	[[ $stderr == *"--rule 2: "* ]]
	[[ $stderr != *"--rule 1: "* ]]
	[ ! -e "$TEST_TMP/ran" ]
	check -r "$GOOD" -r "$rule"
	show
	[ "$status" -eq 2 ]
	[[ $stderr == *"--rule 2: "* ]]
	# a file: line 3 (a comment, the good rule, the bad one)
	printf '# rules\n%s\n%s\n' "$GOOD" "$rule" >"$f"
	check -c "$f"
	show
	[ "$status" -eq 2 ]
	[[ $stderr == *"$f:3: "* ]]
	[[ $stderr != *"$f:2: "* ]]
	run --separate-stderr "$VSOCKIFY" -c "$f" touch "$TEST_TMP/ran"
	[ "$status" -eq 2 ]
	[[ $stderr == *"$f:3: "* ]]
	[ ! -e "$TEST_TMP/ran" ]
	run --separate-stderr env VSOCKIFY_CONFIG="$f" "$VSOCKIFY" touch "$TEST_TMP/ran"
	[ "$status" -eq 2 ]
	[[ $stderr == *"$f:3: "* ]]
	[ ! -e "$TEST_TMP/ran" ]
	# VSOCKIFY_RULES: rule 2
	run --separate-stderr env VSOCKIFY_RULES="$GOOD; $rule" "$VSOCKIFY" --check
	show
	[ "$status" -eq 2 ]
	[[ $stderr == *"VSOCKIFY_RULES: rule 2: "* ]]
	run --separate-stderr env VSOCKIFY_RULES="$GOOD; $rule" "$VSOCKIFY" touch "$TEST_TMP/ran"
	[ "$status" -eq 2 ]
	[[ $stderr == *"VSOCKIFY_RULES: rule 2: "* ]]
	[ ! -e "$TEST_TMP/ran" ]
}

# accepted RULE NORMAL: the rule is fine and --check prints it as NORMAL.
accepted() {
	check -r "$1"
	show
	[ "$status" -eq 0 ]
	[ "$output" = "$2" ]
	[ -z "$stderr" ]
}

@test "the wrapper runs the command when every rule is good (the refusals below are not a broken wrapper)" {
	run "$VSOCKIFY" -r "$GOOD" -r 'name db.internal vsock:2' touch "$TEST_TMP/ran"
	[ "$status" -eq 0 ]
	[ -e "$TEST_TMP/ran" ]
	printf '# rules\n%s\n' "$GOOD" >"$TEST_TMP/good.conf"
	run "$VSOCKIFY" -c "$TEST_TMP/good.conf" sh -c 'echo "$VSOCKIFY_CONFIG"'
	[ "$status" -eq 0 ]
	[ "$output" = "$TEST_TMP/good.conf" ]
}

@test "bad keyword, missing target, extra fields, missing vsock: prefix" {
	refused 'forward 10.0.2.2:80 vsock:1'
	refused 'CONNECTS 10.0.2.2:80 vsock:1'
	refused 'connect 10.0.2.2:80'
	refused 'connect'
	refused 'listen *:80'
	refused 'name db.internal'
	refused 'connect 10.0.2.2:80 vsock:1 extra'
	refused 'connect 10.0.2.2:80 vsock:1 vsock:2'
	refused 'name db.internal vsock:2 x'
	refused 'connect 10.0.2.2:80 1'
	refused 'connect 10.0.2.2:80 tcp:1:80'
	refused 'connect 10.0.2.2:80 10.0.2.3:80'
	refused 'name db.internal 2'
}

@test "bad addresses: brackets, IPv4 ranges, names where an address belongs" {
	refused 'connect [fd00::5 vsock:1'
	refused 'connect fd00::5]:80 vsock:1'
	refused 'connect [fd00::5]80 vsock:1'
	refused 'connect [fd00::5]: vsock:1'
	refused 'connect [fd00::zz]:80 vsock:1'
	refused 'connect [] vsock:1'
	refused 'connect 10.0.2.256:80 vsock:1'
	refused 'connect 10.0.2:80 vsock:1'
	refused 'connect 10.0.2.2: vsock:1'
	refused 'connect 10.0.2.2:80:81 vsock:1'
	refused 'connect 10.0.2.2:http vsock:1'
	refused 'connect db.internal:80 vsock:1'
	refused 'connect * vsock:1'
	refused 'listen db.internal:80 vsock:any'
}

@test "ports must be 1..65535 on both sides" {
	refused 'connect 10.0.2.2:0 vsock:1'
	refused 'connect 10.0.2.2:65536 vsock:1'
	refused 'connect 10.0.2.2:99999999999999999999 vsock:1'
	refused 'connect 10.0.2.2:-1 vsock:1'
	refused 'connect 10.0.2.2:80 vsock:1:0'
	refused 'connect 10.0.2.2:80 vsock:1:65536'
	refused 'connect 10.0.2.2:80 vsock:1:4294967296'
	refused 'connect 10.0.2.2:80 vsock:1:'
	refused 'connect [fd00::5]:0 vsock:1'
	refused 'connect [fd00::5]:65536 vsock:1'
	refused 'listen *:0 vsock:any'
	refused 'listen *:70000 vsock:any'
	refused 'listen 0.0.0.0:8080 vsock:any:0'
	refused 'listen 0.0.0.0:8080 vsock:any:65536'
	accepted 'connect 10.0.2.2:1 vsock:1:65535' 'connect 10.0.2.2:1 vsock:1:65535'
	accepted 'connect 10.0.2.2:65535 vsock:1:1' 'connect 10.0.2.2:65535 vsock:1:1'
	accepted 'connect [fd00::5]:65535 vsock:1' 'connect [fd00::5]:65535 vsock:1'
	accepted 'listen *:1 vsock:any:65535' 'listen *:1 vsock:any:65535'
}

@test "CIDs: 0..4294967294 and the four keywords; 4294967295 and junk are errors" {
	accepted 'connect 10.0.2.2:80 vsock:4294967294' 'connect 10.0.2.2:80 vsock:4294967294'
	accepted 'connect 10.0.2.2:80 vsock:0' 'connect 10.0.2.2:80 vsock:0'
	accepted 'connect 10.0.2.2:80 vsock:host:8080' 'connect 10.0.2.2:80 vsock:2:8080'
	accepted 'connect 10.0.2.2:80 vsock:hypervisor' 'connect 10.0.2.2:80 vsock:0'
	accepted 'connect 10.0.2.2:80 vsock:local' 'connect 10.0.2.2:80 vsock:1'
	accepted 'listen *:80 vsock:any' 'listen *:80 vsock:any'
	refused 'connect 10.0.2.2:80 vsock:4294967295'
	refused 'connect 10.0.2.2:80 vsock:4294967296'
	refused 'connect 10.0.2.2:80 vsock:18446744073709551617'
	refused 'connect 10.0.2.2:80 vsock:-1'
	refused 'connect 10.0.2.2:80 vsock:'
	refused 'connect 10.0.2.2:80 vsock'
	refused 'connect 10.0.2.2:80 vsock::80'
	refused 'connect 10.0.2.2:80 vsock:guest'
	refused 'connect 10.0.2.2:80 vsock:3x'
	refused 'connect 10.0.2.2:80 vsock:0x3'
	refused 'name db.internal vsock:4294967295'
}

@test "name rules: no port, valid names only, never a vsock-*.local name" {
	refused 'name db.internal vsock:2:5432'
	refused 'name db.internal:5432 vsock:2'
	refused 'name *.guests.example vsock:3:22'
	refused 'name vsock-5.local vsock:1'
	refused 'name VSOCK-Host.Local. vsock:3'
	refused 'name vsock-any.local vsock:1'
	refused 'name db..internal vsock:2'
	refused 'name *guests.example vsock:3'
	refused 'name a.*.example vsock:3'
	refused 'name * vsock:3'
	refused 'name *. vsock:3'
	refused 'name bad_name!.example vsock:3'
	refused "name $(printf 'a%.0s' {1..64}).example vsock:3"
	# 253 bytes is the longest name; 254 is too long
	local l63 n253
	l63=$(printf 'a%.0s' {1..63})
	n253=$l63.$l63.$l63.$(printf 'b%.0s' {1..61})
	[ "${#n253}" -eq 253 ]
	accepted "name $n253 vsock:3" "name $n253 vsock:3"
	refused "name ${n253}b vsock:3"
}

@test "a rule whose match repeats an earlier one is an error, also across sources" {
	refused 'connect 127.0.0.1:1 vsock:2'
	refused 'connect 127.0.0.1:1 vsock:1'
	printf '%s\n' 'name db.internal vsock:2' 'connect [fd00::5]:80 vsock:3' 'listen *:9000 vsock:any' \
		'connect 192.0.2.7 vsock:3' >"$TEST_TMP/a.conf"
	for dup in 'name DB.INTERNAL. vsock:3' 'connect [FD00:0::5]:80 vsock:1:81' \
		'listen *:9000 vsock:any:9001' 'connect 192.0.2.7 vsock:4'; do
		check -c "$TEST_TMP/a.conf" -r "$dup"
		show
		[ "$status" -eq 2 ]
		[[ $stderr == *"--rule 1: "* ]]
		cp "$TEST_TMP/a.conf" "$TEST_TMP/b.conf"
		echo "$dup" >>"$TEST_TMP/b.conf"
		check -c "$TEST_TMP/b.conf"
		[ "$status" -eq 2 ]
		[[ $stderr == *"$TEST_TMP/b.conf:5: "* ]]
		[[ $stderr != *"$TEST_TMP/b.conf:1: "* ]]
		run --separate-stderr env VSOCKIFY_RULES="$dup" "$VSOCKIFY" --check -c "$TEST_TMP/a.conf"
		[ "$status" -eq 2 ]
		[[ $stderr == *"VSOCKIFY_RULES: rule 1: "* ]]
	done
	# same address with and without a port, other kinds, other families: not repeats
	check -c "$TEST_TMP/a.conf" -r 'connect 192.0.2.7:80 vsock:1' -r 'listen 192.0.2.7:80 vsock:any' \
		-r 'listen 0.0.0.0:9000 vsock:any' -r 'listen * vsock:any' -r 'name *.db.internal vsock:2' \
		-r 'connect [fd00::5] vsock:3' -r 'connect [fd00::5]:81 vsock:3'
	show
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 11 ]
}

@test "every problem is reported with its own line number, and nothing runs" {
	printf '%s\n' '# a comment' "$GOOD" 'connect 10.0.2.2:0 vsock:1' '' \
		'name db.internal vsock:2' 'bogus' 'name db.internal vsock:3' >"$TEST_TMP/many.conf"
	rm -f "$TEST_TMP/ran"
	run --separate-stderr "$VSOCKIFY" -c "$TEST_TMP/many.conf" -r 'connect 10.0.2.2:80 vsock:1' \
		-r 'connect 10.0.2.2:80' touch "$TEST_TMP/ran"
	show
	[ "$status" -eq 2 ]
	[ ! -e "$TEST_TMP/ran" ]
	[[ $stderr == *"$TEST_TMP/many.conf:3: "* ]]
	[[ $stderr == *"$TEST_TMP/many.conf:6: "* ]]
	[[ $stderr == *"$TEST_TMP/many.conf:7: "* ]]
	[[ $stderr == *"--rule 2: "* ]]
	for n in 1 2 4 5; do [[ $stderr != *"$TEST_TMP/many.conf:$n: "* ]]; done
	[[ $stderr != *"--rule 1: "* ]]
	# one message per problem
	[ "$(grep -c "many.conf:[0-9]*: \|--rule [0-9]*: " <<<"$stderr")" -eq 4 ]
}

@test "--rule N counts the -r options in the order given" {
	check -r 'name a.example vsock:1' -r 'bogus' -r 'name c.example vsock:3' -r 'connect 10.0.2.2:0 vsock:1'
	show
	[ "$status" -eq 2 ]
	[[ $stderr == *"--rule 2: "* && $stderr == *"--rule 4: "* ]]
	[[ $stderr != *"--rule 1: "* && $stderr != *"--rule 3: "* ]]
	# an option holding a ';' is still one option: the next one is --rule 2
	check -r 'name a.example vsock:1; name b.example vsock:2' -r 'bogus'
	show
	[ "$status" -eq 2 ]
	[[ $stderr == *"--rule 2: "* ]]
	[[ $stderr != *"--rule 3: "* ]]
}

@test "config files that are missing, a directory or unreadable" {
	rm -f "$TEST_TMP/ran"
	for f in "$TEST_TMP/missing.conf" "$TEST_TMP"; do
		check -c "$f"
		show
		[ "$status" -eq 2 ]
		[[ $stderr == *"$f"* ]]
		run --separate-stderr "$VSOCKIFY" -c "$f" touch "$TEST_TMP/ran"
		[ "$status" -eq 2 ]
		[[ $stderr == *"$f"* ]]
		[ ! -e "$TEST_TMP/ran" ]
		run --separate-stderr env VSOCKIFY_CONFIG="$f" "$VSOCKIFY" touch "$TEST_TMP/ran"
		[ "$status" -eq 2 ]
		[ ! -e "$TEST_TMP/ran" ]
	done
	# mode 000, read by an unprivileged user (root would read it anyway)
	chmod 755 "$TEST_TMP"
	printf '%s\n' "$GOOD" >"$TEST_TMP/secret.conf"
	chmod 000 "$TEST_TMP/secret.conf"
	run --separate-stderr setpriv --reuid=65534 --regid=65534 --clear-groups "$VSOCKIFY" --check -c "$TEST_TMP/secret.conf"
	show
	[ "$status" -eq 2 ]
	[[ $stderr == *"$TEST_TMP/secret.conf"* ]]
	[ -z "$output" ]
	# the same file readable: fine (so it was the mode)
	chmod 644 "$TEST_TMP/secret.conf"
	run --separate-stderr setpriv --reuid=65534 --regid=65534 --clear-groups "$VSOCKIFY" --check -c "$TEST_TMP/secret.conf"
	[ "$status" -eq 0 ]
	[ "$output" = "$GOOD" ]
}

@test "CRLF line ends are accepted and give the same table and line numbers as LF" {
	printf '%s\n' '# rules' 'name db.internal vsock:2' 'connect 10.0.2.2:5432 vsock:2:5432 # comment' \
		'listen *:9000 vsock:any' >"$TEST_TMP/lf.conf"
	sed 's/$/\r/' "$TEST_TMP/lf.conf" >"$TEST_TMP/crlf.conf"
	grep -q $'\r' "$TEST_TMP/crlf.conf"
	check -c "$TEST_TMP/lf.conf"
	[ "$status" -eq 0 ]
	want=$output
	check -c "$TEST_TMP/crlf.conf"
	show
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "$output" = "$want" ]
	[ "${#lines[@]}" -eq 3 ]
	[[ $output != *$'\r'* ]]
	# a bad line 3 in a CRLF file is still line 3
	printf '# rules\r\nname db.internal vsock:2\r\nconnect 10.0.2.2:0 vsock:1\r\n' >"$TEST_TMP/crlf-bad.conf"
	check -c "$TEST_TMP/crlf-bad.conf"
	[ "$status" -eq 2 ]
	[[ $stderr == *"$TEST_TMP/crlf-bad.conf:3: "* ]]
	# no newline at the end of the last line
	printf 'name db.internal vsock:2\r\nlisten *:9000 vsock:any' >"$TEST_TMP/noeol.conf"
	check -c "$TEST_TMP/noeol.conf"
	[ "$status" -eq 0 ]
	[ "$output" = $'name db.internal vsock:2\nlisten *:9000 vsock:any' ]
}

@test "a NUL byte is an error on its line" {
	printf 'name db.internal vsock:2\nconnect 10.0.2.2:80 vsock:1\0\nlisten *:9000 vsock:any\n' >"$TEST_TMP/nul.conf"
	check -c "$TEST_TMP/nul.conf"
	show
	[ "$status" -eq 2 ]
	[[ $stderr == *"$TEST_TMP/nul.conf:2: "* ]]
	[[ $stderr != *"$TEST_TMP/nul.conf:1: "* && $stderr != *"$TEST_TMP/nul.conf:3: "* ]]
	# inside a comment too
	printf '# a\0comment\nname db.internal vsock:2\n' >"$TEST_TMP/nul2.conf"
	check -c "$TEST_TMP/nul2.conf"
	show
	[ "$status" -eq 2 ]
	[[ $stderr == *"$TEST_TMP/nul2.conf:1: "* ]]
	rm -f "$TEST_TMP/ran"
	run "$VSOCKIFY" -c "$TEST_TMP/nul.conf" touch "$TEST_TMP/ran"
	[ "$status" -eq 2 ]
	[ ! -e "$TEST_TMP/ran" ]
}

@test "lines of 10 000 characters: fine as blanks or a comment, an error as one field" {
	local x blanks
	x=$(printf 'x%.0s' {1..10000})
	blanks=$(printf ' %.0s' {1..10000})
	{
		echo "# $x"
		echo "connect${blanks}10.0.2.2:80${blanks}vsock:1${blanks}# $x"
		echo "name ${x}.example vsock:2"
		echo "connect 10.0.2.2:8$x vsock:1"
		echo "connect 10.0.2.2:81 vsock:1:8$x"
		echo "listen *:9000 vsock:${x}"
		echo "connect [fd00::$x]:80 vsock:1"
	} >"$TEST_TMP/long.conf"
	[ "$(wc -L <"$TEST_TMP/long.conf")" -gt 10000 ]
	check -c "$TEST_TMP/long.conf"
	show | cut -c1-300
	[ "$status" -eq 2 ]
	for n in 3 4 5 6 7; do [[ $stderr == *"$TEST_TMP/long.conf:$n: "* ]]; done
	[[ $stderr != *"$TEST_TMP/long.conf:1: "* && $stderr != *"$TEST_TMP/long.conf:2: "* ]]
	# the first two lines alone are good
	head -n 2 "$TEST_TMP/long.conf" >"$TEST_TMP/long-ok.conf"
	check -c "$TEST_TMP/long-ok.conf"
	[ "$status" -eq 0 ]
	[ "$output" = "connect 10.0.2.2:80 vsock:1" ]
	# and a 10 000-character -r
	check -r "connect 10.0.2.2:80 vsock:1${blanks}"
	[ "$status" -eq 0 ]
	check -r "name ${x}.example vsock:2"
	[ "$status" -eq 2 ]
	[[ $stderr == *"--rule 1: "* ]]
}

@test "10 000 rules: --check prints all of them, quickly; the library starts quickly with them" {
	python3 -c '
for i in range(5000):
    print("connect 10.%d.%d.%d:%d vsock:%d:%d" % (i >> 16, (i >> 8) & 255, i & 255, 1 + i % 65535, 3 + i, 1 + (i * 7) % 65535))
for i in range(4000):
    print("name host%d.example vsock:%d" % (i, 3 + i))
for i in range(1000):
    print("listen [fd00::1:%x]:%d vsock:any" % (i, 1 + i))' >"$TEST_TMP/big.conf"
	[ "$(wc -l <"$TEST_TMP/big.conf")" -eq 10000 ]
	local t0 t1
	t0=$(date +%s%N)
	check -c "$TEST_TMP/big.conf"
	t1=$(date +%s%N)
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 10000 ]
	diff "$TEST_TMP/big.conf" <(printf '%s\n' "$output")
	echo "--check took $(((t1 - t0) / 1000000)) ms"
	[ $(((t1 - t0) / 1000000)) -lt 3000 ]
	# the library alone: parse all 10 000 at start-up, then resolve the last name
	t0=$(date +%s%N)
	run env VSOCKIFY_CONFIG="$TEST_TMP/big.conf" LD_PRELOAD="$LIB" getent ahostsv4 host3999.example
	t1=$(date +%s%N)
	echo "$output"
	[ "$status" -eq 0 ]
	# (a name rule answers exactly as vsock-4002.local would, canonical name too)
	[ "${lines[0]}" = "127.128.15.162  STREAM vsock-4002.local" ] # CID 4002 = 15 * 256 + 162
	echo "getent took $(((t1 - t0) / 1000000)) ms"
	[ $(((t1 - t0) / 1000000)) -lt 3000 ]
	# one more rule that repeats rule 9 999 is found
	echo 'name host3998.example vsock:1' >>"$TEST_TMP/big.conf"
	check -c "$TEST_TMP/big.conf"
	[ "$status" -eq 2 ]
	[[ $stderr == *"$TEST_TMP/big.conf:10001: "* ]]
}

@test "a file of 16 MiB is read; one byte more is refused whole" {
	# a valid rule, then one comment line up to exactly 16 MiB
	{
		echo 'name db.internal vsock:2'
		python3 -c 'import sys; sys.stdout.write("#" * ((16 << 20) - 25 - 1) + "\n")'
	} >"$TEST_TMP/16m.conf"
	[ "$(stat -c %s "$TEST_TMP/16m.conf")" -eq $((16 << 20)) ]
	check -c "$TEST_TMP/16m.conf"
	[ "$status" -eq 0 ]
	[ "$output" = "name db.internal vsock:2" ]
	echo >>"$TEST_TMP/16m.conf"
	check -c "$TEST_TMP/16m.conf"
	show | cut -c1-300
	[ "$status" -eq 2 ]
	[[ $stderr == *"$TEST_TMP/16m.conf"* ]]
	[ -z "$output" ]
	# and the library ignores it: db.internal stays unknown
	need_nonet
	run nonet env VSOCKIFY_CONFIG="$TEST_TMP/16m.conf" LD_PRELOAD="$LIB" getent ahostsv4 db.internal
	echo "$output"
	[ "$status" -eq 2 ]
	[[ $output == *"vsockify["*"]: $TEST_TMP/16m.conf"* ]]
	[[ $output != *"127.128."* ]]
}

# ---- sources and their order ---------------------------------------------------

@test "--check lists the file's rules, then VSOCKIFY_RULES, then -r; -c replaces VSOCKIFY_CONFIG" {
	printf '%s\n' 'name f1.example vsock:3' 'name f2.example vsock:4' >"$TEST_TMP/env.conf"
	printf '%s\n' 'name c1.example vsock:5' >"$TEST_TMP/opt.conf"
	run --separate-stderr env VSOCKIFY_CONFIG="$TEST_TMP/env.conf" \
		VSOCKIFY_RULES='name e1.example vsock:6; name e2.example vsock:7' \
		"$VSOCKIFY" --check -r 'name r1.example vsock:8' -r 'name r2.example vsock:9'
	show
	[ "$status" -eq 0 ]
	[ "$output" = "name f1.example vsock:3
name f2.example vsock:4
name e1.example vsock:6
name e2.example vsock:7
name r1.example vsock:8
name r2.example vsock:9" ]
	# -r before -c on the command line: the order is still file, env, -r
	run --separate-stderr env VSOCKIFY_CONFIG="$TEST_TMP/env.conf" VSOCKIFY_RULES='name e1.example vsock:6' \
		"$VSOCKIFY" --check -r 'name r1.example vsock:8' -c "$TEST_TMP/opt.conf"
	show
	[ "$status" -eq 0 ]
	[ "$output" = "name c1.example vsock:5
name e1.example vsock:6
name r1.example vsock:8" ]
	# --config is the long form of -c, --rule of -r
	run --separate-stderr "$VSOCKIFY" --check --rule 'name r1.example vsock:8' --config "$TEST_TMP/opt.conf"
	[ "$status" -eq 0 ]
	[ "$output" = $'name c1.example vsock:5\nname r1.example vsock:8' ]
}

@test "the command gets the same sources: the first match wins across file, VSOCKIFY_RULES and -r" {
	need_nonet
	printf '%s\n' 'name x.example vsock:3' >"$TEST_TMP/f.conf"
	run nonet env VSOCKIFY_RULES='name *.example vsock:4' "$VSOCKIFY" -c "$TEST_TMP/f.conf" \
		-r 'name y.example vsock:6' -r 'name other.test vsock:7' \
		getent ahostsv4 x.example y.example z.example other.test
	echo "$output"
	[ "$status" -eq 0 ]
	# one STREAM line per name, in order (the canonical name is vsock-N.local);
	# getent also prints the DGRAM and RAW entries, as for any name
	[ "$(awk '$2 == "STREAM" {print $1}' <<<"$output")" = "127.128.0.3
127.128.0.4
127.128.0.4
127.128.0.7" ]
}

# ---- name rules: resolution only -------------------------------------------------

@test "a name rule resolves to the CID's fake addresses, without case or trailing dot" {
	need_nonet
	export VSOCKIFY_RULES='name DB.Internal vsock:host; name db4g.internal vsock:4000000000'
	run gai db.internal
	[ "$status" -eq 0 ]
	[ "$output" = $'AF_INET 127.128.0.2 80\nAF_INET6 100::7673:6f63:0:2 80' ]
	run gai DB.INTERNAL. 2
	[ "$output" = "AF_INET 127.128.0.2 80" ]
	run gai db.internal 10
	[ "$output" = "AF_INET6 100::7673:6f63:0:2 80" ]
	# a CID too big for the IPv4 range: IPv6 only
	run gai db4g.internal
	[ "$output" = "AF_INET6 100::7673:6f63:ee6b:2800 80" ]
	# not a match: the resolver says no (this namespace has no DNS)
	run gai db.internal.example
	[[ $output == gaierror* ]]
	run gai internal
	[[ $output == gaierror* ]]
	run nonet env LD_PRELOAD="$LIB" VSOCKIFY_RULES='name db.internal vsock:5' getent hosts db.internal
	# the answer is exactly vsock-5.local's
	[ "$output" = "100::7673:6f63:0:5 vsock-5.local" ]
}

@test "a wildcard name rule matches every name under the suffix, not the suffix itself" {
	need_nonet
	export VSOCKIFY_RULES='name *.guests.example vsock:3'
	for n in box1.guests.example a.b.c.guests.example BOX1.Guests.Example. x-y.guests.example; do
		run gai "$n" 2
		echo "$n: $output"
		[ "$output" = "AF_INET 127.128.0.3 80" ]
	done
	for n in guests.example xguests.example guests.example.org box1.guests.example.org; do
		run gai "$n" 2
		echo "$n: $output"
		[[ $output == gaierror* ]]
	done
}

@test "name rules: the first match wins, whichever is more specific" {
	need_nonet
	VSOCKIFY_RULES='name box.guests.example vsock:5; name *.guests.example vsock:3' run gai box.guests.example 2
	[ "$output" = "AF_INET 127.128.0.5 80" ]
	VSOCKIFY_RULES='name box.guests.example vsock:5; name *.guests.example vsock:3' run gai other.guests.example 2
	[ "$output" = "AF_INET 127.128.0.3 80" ]
	VSOCKIFY_RULES='name *.guests.example vsock:3; name box.guests.example vsock:5' run gai box.guests.example 2
	[ "$output" = "AF_INET 127.128.0.3 80" ]
	VSOCKIFY_RULES='name *.example vsock:3; name *.guests.example vsock:5' run gai box.guests.example 2
	[ "$output" = "AF_INET 127.128.0.3 80" ]
	VSOCKIFY_RULES='name *.guests.example vsock:5; name *.example vsock:3' run gai box.guests.example 2
	[ "$output" = "AF_INET 127.128.0.5 80" ]
}

@test "built-in vsock-*.local names come before every rule" {
	need_nonet
	# a wildcard that covers .local cannot take vsock-5.local
	VSOCKIFY_RULES='name *.local vsock:3' run gai vsock-5.local 2
	[ "$output" = "AF_INET 127.128.0.5 80" ]
	VSOCKIFY_RULES='name *.local vsock:3' run gai printer.local 2
	[ "$output" = "AF_INET 127.128.0.3 80" ]
	# a malformed vsock name stays malformed (EAI_NONAME)
	VSOCKIFY_RULES='name *.local vsock:3' run gai vsock-x.local 2
	[ "$output" = "gaierror $(python3 -c 'import socket; print(socket.EAI_NONAME)')" ]
}

# ---- the library alone with a bad source --------------------------------------

@test "library alone: a bad file is ignored whole and logged; VSOCKIFY_RULES still applies" {
	need_nonet
	printf '%s\n' '# one good rule, one bad' 'name good.example vsock:3' 'name bad.example vsock:' >"$TEST_TMP/bad.conf"
	run nonet env VSOCKIFY_CONFIG="$TEST_TMP/bad.conf" VSOCKIFY_RULES='name env.example vsock:4' \
		LD_PRELOAD="$LIB" getent ahostsv4 env.example vsock-6.local good.example
	echo "$output"
	# good.example is not resolved: getent's status 2 (a key not found)
	[ "$status" -eq 2 ]
	[[ $output == *"vsockify["*"]: $TEST_TMP/bad.conf:3: "* ]]
	[[ $output == *"127.128.0.4     STREAM vsock-4.local"* ]]
	[[ $output == *"127.128.0.6     STREAM vsock-6.local"* ]]
	[[ $output != *"127.128.0.3 "* ]]
	# the log file, when one is set
	# (rules are read at the first lookup that needs them: good.example)
	run nonet env VSOCKIFY_CONFIG="$TEST_TMP/bad.conf" VSOCKIFY_LOG_FILE="$TEST_TMP/log" \
		LD_PRELOAD="$LIB" getent ahostsv4 vsock-6.local good.example
	[ "$status" -eq 2 ]
	[ "$(grep -v -E '^127\.128\.0\.6 +(DGRAM|RAW) *$' <<<"$output")" = "127.128.0.6     STREAM vsock-6.local" ]
	grep -q "^vsockify\[[0-9]*\]: .*$TEST_TMP/bad.conf:3: " "$TEST_TMP/log"
	# VSOCKIFY_LOG=off silences it, the file is still ignored
	run nonet env VSOCKIFY_CONFIG="$TEST_TMP/bad.conf" VSOCKIFY_LOG=off LD_PRELOAD="$LIB" getent ahostsv4 good.example
	[ "$status" -eq 2 ]
	[ -z "$output" ]
}

@test "library alone: bad VSOCKIFY_RULES is ignored whole and logged; the file still applies" {
	need_nonet
	printf '%s\n' 'name file.example vsock:3' >"$TEST_TMP/good.conf"
	run nonet env VSOCKIFY_CONFIG="$TEST_TMP/good.conf" VSOCKIFY_RULES='name env.example vsock:4; name x.example vsock:4294967295' \
		LD_PRELOAD="$LIB" getent ahostsv4 file.example env.example
	echo "$output"
	[ "$status" -eq 2 ]
	[[ $output == *"vsockify["*"]: VSOCKIFY_RULES: rule 2: "* ]]
	[[ $output == *"127.128.0.3     STREAM vsock-3.local"* ]]
	[[ $output != *"127.128.0.4 "* ]]
	# a VSOCKIFY_CONFIG that does not exist is logged too, and the rules apply
	run nonet env VSOCKIFY_CONFIG="$TEST_TMP/missing.conf" VSOCKIFY_RULES='name env.example vsock:4' \
		LD_PRELOAD="$LIB" getent ahostsv4 env.example
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"vsockify["*"]: "*"$TEST_TMP/missing.conf"* ]]
	[[ $output == *"127.128.0.4     STREAM vsock-4.local"* ]]
}

@test "library alone: a connect rule from a bad source is not applied (the dial stays TCP)" {
	local p
	p=$(free_tcp_port)
	serve_tcp tcpsrv "$p"
	printf '%s\n' "connect 127.0.0.1:$p vsock:1" 'connect 10.0.2.2:0 vsock:1' >"$TEST_TMP/bad.conf"
	# were the rule applied, the dial would make an AF_VSOCK socket and die (SIGSYS)
	run env VSOCKIFY_CONFIG="$TEST_TMP/bad.conf" LD_PRELOAD="$LIB" python3 "$DIAL" 127.0.0.1 "$p"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"vsockify["*"]: $TEST_TMP/bad.conf:2: "* ]]
	[[ $output == *"peer 127.0.0.1 $p"* ]]
	[[ $output == *"got tcpsrv"* ]]
	run env VSOCKIFY_RULES="connect 127.0.0.1:$p vsock:1; connect 10.0.2.2:80 vsock:1 x" LD_PRELOAD="$LIB" \
		python3 "$DIAL" 127.0.0.1 "$p"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"vsockify["*"]: VSOCKIFY_RULES: rule 2: "* ]]
	[[ $output == *"got tcpsrv"* ]]
	# and the same rule from a good source does apply: killed by the guard
	run -"$SIGSYS_STATUS" env VSOCKIFY_RULES="connect 127.0.0.1:$p vsock:1" LD_PRELOAD="$LIB" \
		python3 "$DIAL" 127.0.0.1 "$p"
	[[ $output != *"got tcpsrv"* ]]
}

# ---- connect and listen rules touch only what they match -----------------------

@test "a connect rule for 127.0.0.1:P1 leaves 127.0.0.1:P2 on TCP (curl and python)" {
	local p1 p2
	p1=$(free_tcp_port)
	p2=$(free_tcp_port)
	[ "$p1" != "$p2" ]
	mkdir "$TEST_TMP/www"
	echo "plain tcp page" >"$TEST_TMP/www/index.html"
	start_bg web python3 -u -m http.server --bind 127.0.0.1 --directory "$TEST_TMP/www" "$p2"
	wait_for_log web "Serving HTTP"
	run "$VSOCKIFY" -r "connect 127.0.0.1:$p1 vsock:1" curl -sS --max-time 20 -w ' %{remote_ip}:%{remote_port}' "http://127.0.0.1:$p2/"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "plain tcp page
 127.0.0.1:$p2" ]
	run "$VSOCKIFY" -r "connect 127.0.0.1:$p1 vsock:1" -r "connect 127.0.0.2 vsock:1" -r "connect [::1]:$p2 vsock:1" \
		-r "listen *:$p2 vsock:any" python3 "$DIAL" 127.0.0.1 "$p2" $'GET / HTTP/1.0\r\n\r\n'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "peer 127.0.0.1 $p2" ]
	[ "${lines[1]}" = "local 127.0.0.1" ]
	[[ ${lines[2]} == "got HTTP/1.0 200 OK"*"plain tcp page" ]]
	# the IPv4-mapped form of a port the rule does not name
	run "$VSOCKIFY" -r "connect 127.0.0.1:$p1 vsock:1" python3 "$DIAL" ::ffff:127.0.0.1 "$p2" $'GET / HTTP/1.0\r\n\r\n'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "peer ::ffff:127.0.0.1 $p2" ]
	[[ ${lines[2]} == *"plain tcp page" ]]
	# the control: the rule does catch its own port (an AF_VSOCK socket: killed by the guard)
	run -"$SIGSYS_STATUS" "$VSOCKIFY" -r "connect 127.0.0.1:$p1 vsock:1" python3 "$DIAL" 127.0.0.1 "$p1"
}

@test "the matching dial does go to vsock: under the guard it dies with SIGSYS" {
	local p1 p2
	p1=$(free_tcp_port)
	p2=$(free_tcp_port)
	serve_tcp tcp1 "$p1"
	# the oracle: with no rule for it, 127.0.0.1:P1 answers over TCP
	run "$VSOCKIFY" -r "connect 127.0.0.1:$p2 vsock:1" python3 "$DIAL" 127.0.0.1 "$p1"
	[ "$status" -eq 0 ]
	[ "${lines[2]}" = "got tcp1" ]
	# one address and port
	run -"$SIGSYS_STATUS" "$VSOCKIFY" -r "connect 127.0.0.1:$p1 vsock:1" python3 "$DIAL" 127.0.0.1 "$p1"
	[[ $output != *"got"* ]]
	# an IPv4 rule matches the IPv4-mapped form an AF_INET6 socket dials
	run -"$SIGSYS_STATUS" "$VSOCKIFY" -r "connect 127.0.0.1:$p1 vsock:1" python3 "$DIAL" ::ffff:127.0.0.1 "$p1"
	# every port of an address
	run -"$SIGSYS_STATUS" "$VSOCKIFY" -r "connect 127.0.0.1 vsock:1" python3 "$DIAL" 127.0.0.1 "$p1"
	# the same through VSOCKIFY_RULES and a file, library alone
	run -"$SIGSYS_STATUS" env VSOCKIFY_RULES="connect 127.0.0.1:$p1 vsock:2:9" LD_PRELOAD="$LIB" python3 "$DIAL" 127.0.0.1 "$p1"
	printf 'connect 127.0.0.1:%s vsock:1\n' "$p1" >"$TEST_TMP/r.conf"
	run -"$SIGSYS_STATUS" env VSOCKIFY_CONFIG="$TEST_TMP/r.conf" LD_PRELOAD="$LIB" python3 "$DIAL" 127.0.0.1 "$p1"
}

@test "listen rules catch only the binds they name, and never a connect" {
	local p1 p2 bind
	p1=$(free_tcp_port)
	p2=$(free_tcp_port)
	bind='import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen()
print("bound", s.getsockname()[:2], s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN))'
	# other ports and other addresses stay TCP
	run "$VSOCKIFY" -r "listen 127.0.0.1:$p1 vsock:any" python3 -c "$bind" 127.0.0.1 "$p2"
	[ "$status" -eq 0 ]
	[ "$output" = "bound ('127.0.0.1', $p2) 2" ]
	run "$VSOCKIFY" -r "listen 127.0.0.2:$p1 vsock:any" -r "connect 127.0.0.1:$p1 vsock:1" python3 -c "$bind" 127.0.0.1 "$p1"
	[ "$status" -eq 0 ]
	[ "$output" = "bound ('127.0.0.1', $p1) 2" ]
	# the binds the rules name die under the guard
	run -"$SIGSYS_STATUS" "$VSOCKIFY" -r "listen *:$p1 vsock:any" python3 -c "$bind" 127.0.0.1 "$p1"
	run -"$SIGSYS_STATUS" "$VSOCKIFY" -r "listen *:$p1 vsock:any" python3 -c "$bind" 0.0.0.0 "$p1"
	run -"$SIGSYS_STATUS" "$VSOCKIFY" -r "listen *:$p1 vsock:any" python3 -c "$bind" ::1 "$p1"
	run -"$SIGSYS_STATUS" "$VSOCKIFY" -r "listen 127.0.0.1:$p1 vsock:any" python3 -c "$bind" 127.0.0.1 "$p1"
	run -"$SIGSYS_STATUS" "$VSOCKIFY" -r "listen 127.0.0.1:$p1 vsock:any" python3 -c "$bind" ::ffff:127.0.0.1 "$p1"
	run -"$SIGSYS_STATUS" "$VSOCKIFY" -r "listen 127.0.0.1 vsock:any" python3 -c "$bind" 127.0.0.1 "$p2"
	# a listen rule for P1 does not touch a connect to P1
	serve_tcp tcp1 "$p1"
	run "$VSOCKIFY" -r "listen *:$p1 vsock:any" -r "listen * vsock:any:$p2" python3 "$DIAL" 127.0.0.1 "$p1"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[2]}" = "got tcp1" ]
}

# ---- the rule table is read safely ------------------------------------------

@test "the first rule lookup, a connect() in a signal handler interrupting malloc, does not deadlock" {
	need_helper sigrules
	local p i
	p=$(free_tcp_port) # nothing listens there: each connect is refused at once
	python3 -c '
for i in range(1000):
    print("connect 192.0.%d.%d:80 vsock:1" % (i >> 8, i & 255))' >"$TEST_TMP/r.conf"
	# the control: without rules the handler never deadlocks
	run timeout 10 env LD_PRELOAD="$LIB" "$ROOT/build/helpers/sigrules" 127.0.0.1 "$p"
	[ "$status" -eq 0 ]
	[ "$output" = "handled=20 first=ECONNREFUSED" ]
	for i in 1 2 3 4 5 6 7 8; do
		# rules that do not match 127.0.0.1: the connect only has to look
		run timeout 10 env VSOCKIFY_RULES='connect 192.0.2.1:80 vsock:1' LD_PRELOAD="$LIB" \
			"$ROOT/build/helpers/sigrules" 127.0.0.1 "$p"
		echo "VSOCKIFY_RULES, run $i: status=$status $output"
		[ "$status" -eq 0 ] # 124: deadlocked in the handler
		[ "$output" = "handled=20 first=ECONNREFUSED" ]
		run timeout 10 env VSOCKIFY_CONFIG="$TEST_TMP/r.conf" LD_PRELOAD="$LIB" \
			"$ROOT/build/helpers/sigrules" 127.0.0.1 "$p"
		echo "VSOCKIFY_CONFIG, run $i: status=$status $output"
		[ "$status" -eq 0 ]
		[ "$output" = "handled=20 first=ECONNREFUSED" ]
	done
}
