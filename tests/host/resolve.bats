#!/usr/bin/env bats
# Name resolution of the vsock-*.local namespace.  No vsock traffic: safe on
# the host.

load ../lib/common

setup() { common_setup; }
teardown() { common_teardown; }

gai() { # NAME [FAMILY] [FLAGS] [SOCKTYPE]: print python's getaddrinfo answer
	preload python3 -c '
import socket, sys
fam = int(sys.argv[2]) if len(sys.argv) > 2 else 0
flags = int(sys.argv[3]) if len(sys.argv) > 3 else 0
stype = int(sys.argv[4]) if len(sys.argv) > 4 else socket.SOCK_STREAM
try:
    for f, t, p, canon, sa in socket.getaddrinfo(sys.argv[1], 8080, fam, stype, 0, flags):
        print(f.name, t.name, p, canon or "-", sa[0], sa[1])
except socket.gaierror as e:
    print("gaierror", e.errno)' "$@"
}

@test "vsock-<CID>.local answers IPv4 then IPv6" {
	run gai vsock-3.local
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "AF_INET SOCK_STREAM 6 - 127.128.0.3 8080" ]
	[ "${lines[1]}" = "AF_INET6 SOCK_STREAM 6 - 100::7673:6f63:0:3 8080" ]
	[ "${#lines[@]}" -eq 2 ]
	# no socket type: one answer per type for each address, as glibc gives
	run gai vsock-3.local 0 0 0
	[ "$output" = "AF_INET SOCK_STREAM 6 - 127.128.0.3 8080
AF_INET SOCK_DGRAM 17 - 127.128.0.3 8080
AF_INET SOCK_RAW 0 - 127.128.0.3 8080
AF_INET6 SOCK_STREAM 6 - 100::7673:6f63:0:3 8080
AF_INET6 SOCK_DGRAM 17 - 100::7673:6f63:0:3 8080
AF_INET6 SOCK_RAW 0 - 100::7673:6f63:0:3 8080" ]
}

# shape FAMILY NODE SERVICE HINTS...: gaidump's answer reduced to the socket
# type and protocol of each entry of FAMILY (0: every entry), or its error.
shape() {
	local fam=$1
	shift
	"$ROOT/build/helpers/gaidump" gai "$@" | awk -v fam="$fam" '
		/^error/ { print; next }
		{ split($1, f, "="); if (fam == 0 || f[2] == fam) print $2, $3 }'
}

@test "every socket type and protocol hint: the same entries or error as a real name" {
	local svc fam st proto real mine node bad=0 n=0
	AI_PASSIVE=1
	for svc in - 8080 http; do
		for fam in 2 10 0; do
			node=127.0.0.1
			[ "$fam" = 10 ] && node=::1
			# 0 STREAM DGRAM RAW SEQPACKET DCCP x 0 TCP UDP DCCP SCTP UDPLITE MPTCP
			for st in 0 1 2 3 5 6; do
				for proto in 0 6 17 33 132 136 262; do
					n=$((n + 1))
					real=$(shape "$fam" "$node" "$svc" "$fam" "$st" 0 "$proto")
					if [ "$fam" = 2 ]; then # a name looked up in /etc/hosts
						mine=$(shape 2 localhost "$svc" 2 "$st" 0 "$proto")
						[ "$mine" = "$real" ] || { echo "localhost differs: $svc $fam $st $proto"; bad=$((bad + 1)); }
					fi
					# AF_UNSPEC: the IPv4 fake's entries, then the IPv6 fake's
					[[ $fam != 0 || $real == error* ]] || real=$real$'\n'$real
					mine=$(preload shape 0 vsock-1.local "$svc" "$fam" "$st" 0 "$proto")
					if [ "$mine" != "$real" ]; then
						echo "service=$svc family=$fam socktype=$st protocol=$proto"
						echo "  $node: ${real//$'\n'/, }"
						echo "  vsock-1.local: ${mine//$'\n'/, }"
						bad=$((bad + 1))
					fi
					# a passive lookup (a server's bind) answers the same
					mine=$(preload shape 0 vsock-any.local "$svc" "$fam" "$st" $AI_PASSIVE "$proto")
					[ "$mine" = "$real" ] || { echo "vsock-any.local passive differs: $svc $fam $st $proto"; bad=$((bad + 1)); }
				done
			done
		done
	done
	# NULL hints are AF_UNSPEC, any type
	real=$(shape 0 127.0.0.1 8080 - - -)
	mine=$(preload shape 0 vsock-1.local 8080 - - -)
	[ "$mine" = "$real"$'\n'"$real" ] || { echo "NULL hints: $mine"; bad=$((bad + 1)); }
	echo "$n combinations, $bad differences"
	[ "$bad" -eq 0 ]
}

@test "a CID too large for IPv4, asked as AF_INET: a bad hint is still the hint's error" {
	local st proto real mine
	for st in 0 1 2 3 5; do
		for proto in 0 6 17 132 262; do
			real=$(shape 2 127.0.0.1 8080 2 "$st" 0 "$proto")
			mine=$(preload shape 2 vsock-4000000000.local 8080 2 "$st" 0 "$proto")
			[[ $real == error* ]] || real="error -9 Address family for hostname not supported"
			[ "$mine" = "$real" ] || { echo "socktype=$st protocol=$proto: $mine, want $real"; return 1; }
			# its IPv6 answer is shaped as any other
			[ "$(preload shape 10 vsock-4000000000.local 8080 10 "$st" 0 "$proto")" = \
				"$(shape 10 ::1 8080 10 "$st" 0 "$proto")" ]
		done
	done
}

@test "keywords, case and a trailing dot" {
	run gai vsock-host.local 2
	[ "$output" = "AF_INET SOCK_STREAM 6 - 127.128.0.2 8080" ]
	run gai VSOCK-Local.LOCAL. 2
	[ "$output" = "AF_INET SOCK_STREAM 6 - 127.128.0.1 8080" ]
	run gai vsock-hypervisor.local 2
	[ "$output" = "AF_INET SOCK_STREAM 6 - 127.128.0.0 8080" ]
	run gai vsock-any.local 2 1
	[ "$output" = "AF_INET SOCK_STREAM 6 - 127.255.255.255 8080" ]
}

@test "AF_INET6 hints give the IPv6 fake; a big CID is IPv6-only" {
	run gai vsock-7.local 10
	[ "$output" = "AF_INET6 SOCK_STREAM 6 - 100::7673:6f63:0:7 8080" ]
	run gai vsock-4000000000.local
	[ "$output" = "AF_INET6 SOCK_STREAM 6 - 100::7673:6f63:ee6b:2800 8080" ]
	run gai vsock-4000000000.local 2
	[ "$output" = "gaierror $(python3 -c 'import socket; print(socket.EAI_ADDRFAMILY)')" ]
}

@test "AI_CANONNAME reports the vsock name itself" {
	run gai VSOCK-3.local. 2 2
	[ "$output" = "AF_INET SOCK_STREAM 6 vsock-3.local 127.128.0.3 8080" ]
}

@test "AI_NUMERICHOST with a vsock name is left to libc (EAI_NONAME)" {
	run gai vsock-3.local 0 4
	[ "$output" = "gaierror -2" ]
}

@test "getent (gethostbyname2/getaddrinfo) sees the fakes" {
	run preload getent ahostsv4 vsock-5.local
	[[ ${lines[0]} == "127.128.0.5     STREAM vsock-5.local" ]]
	run preload getent hosts vsock-5.local
	[ "$output" = "100::7673:6f63:0:5 vsock-5.local" ]
}

@test "gethostbyname, gethostbyaddr and getnameinfo round-trip" {
	run preload python3 -c '
import socket
print(socket.gethostbyname("vsock-12.local"))
print(socket.gethostbyname_ex("vsock-12.local"))
print(socket.gethostbyaddr("127.128.0.12"))
print(socket.gethostbyaddr("100::7673:6f63:0:c")[0])
print(socket.getnameinfo(("127.128.0.12", 22), 0))
print(socket.getnameinfo(("127.128.0.12", 22), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV))
print(socket.getnameinfo(("127.255.255.255", 80), 0))'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "127.128.0.12" ]
	[ "${lines[1]}" = "('vsock-12.local', [], ['127.128.0.12'])" ]
	[ "${lines[2]}" = "('vsock-12.local', [], ['127.128.0.12'])" ]
	[ "${lines[3]}" = "vsock-12.local" ]
	[ "${lines[4]}" = "('vsock-12.local', 'ssh')" ]
	[ "${lines[5]}" = "('127.128.0.12', '22')" ]
	[ "${lines[6]}" = "('vsock-any.local', 'http')" ]
}

@test "malformed names: EAI_NONAME at once, a log line when logging is on" {
	for name in vsock-.local vsock-3x.local vsock-4294967296.local vsock--1.local "vsock- 3.local" vsock-4294967295.local vsock-3.sub.local; do
		run env VSOCKIFY_LOG=warn LD_PRELOAD="$LIB" python3 -c '
import socket, sys
try: socket.getaddrinfo(sys.argv[1], 80); print("resolved")
except socket.gaierror as e: print("gaierror", e.errno == socket.EAI_NONAME)
try: socket.gethostbyname(sys.argv[1]); print("resolved")
except OSError as e: print("herror")' "$name"
		[[ ${lines[0]} == "vsockify["*"]: getaddrinfo(\"$name\"): not a valid vsock name"* ]]
		[[ $output == *"gaierror True"* ]]
		[[ $output == *"herror"* ]]
	done
	# quiet by default
	run preload python3 -c '
import socket
try: socket.getaddrinfo("vsock-x.local", 80)
except socket.gaierror: print("quiet")'
	[ "$output" = "quiet" ]
}

@test "malformed names never reach DNS or mDNS (no resolver files, no sockets)" {
	run env LD_PRELOAD="$LIB" strace -f -e trace=network,openat getent ahosts vsock-3x.local
	[ "$status" -eq 2 ]
	! grep -E 'resolv.conf|nsswitch|libnss_|socket\(' <<<"$output"
}

@test "VSOCKIFY_FAKE_NET4/6 move the fake ranges; bad values are reported" {
	run env VSOCKIFY_FAKE_NET4=127.200.0.0/16 VSOCKIFY_FAKE_NET6=fd00:76::/96 LD_PRELOAD="$LIB" getent ahosts vsock-258.local
	[[ ${lines[0]} == "127.200.1.2 "* ]]
	[[ $output == *"fd00:76::102 "* ]]
	run env VSOCKIFY_FAKE_NET4=10.0.0.0/33 LD_PRELOAD="$LIB" getent ahostsv4 vsock-3.local
	[[ $output == *'vsockify['*']: ignoring VSOCKIFY_FAKE_NET4="10.0.0.0/33"'* ]]
	[[ $output == *"127.128.0.3 "* ]]
}

@test "VSOCKIFY_LOG_FILE receives the log lines, and errno is kept" {
	run env VSOCKIFY_LOG=debug VSOCKIFY_LOG_FILE="$TEST_TMP/log" LD_PRELOAD="$LIB" getent ahosts vsock-4.local
	[ "$status" -eq 0 ]
	[[ $output != *vsockify* ]]
	grep -E '^vsockify\[[0-9]+\]: getaddrinfo\("vsock-4.local"\) -> CID 4$' "$TEST_TMP/log"
}
