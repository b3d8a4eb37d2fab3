#!/usr/bin/env bats
# Name resolution of the vsock-*.local namespace.  No vsock traffic: safe on
# the host.

load ../lib/common

setup() { common_setup; }
teardown() { common_teardown; }

gai() { # NAME [FAMILY] [FLAGS]: print python's getaddrinfo answer
	preload python3 -c '
import socket, sys
fam = int(sys.argv[2]) if len(sys.argv) > 2 else 0
flags = int(sys.argv[3]) if len(sys.argv) > 3 else 0
try:
    for f, t, p, canon, sa in socket.getaddrinfo(sys.argv[1], 8080, fam, 0, 0, flags):
        print(f.name, t.name, p, canon or "-", sa[0], sa[1])
except socket.gaierror as e:
    print("gaierror", e.errno)' "$@"
}

@test "vsock-<CID>.local answers IPv4 then IPv6, stream only" {
	run gai vsock-3.local
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "AF_INET SOCK_STREAM 6 - 127.128.0.3 8080" ]
	[ "${lines[1]}" = "AF_INET6 SOCK_STREAM 6 - 100::7673:6f63:0:3 8080" ]
	[ "${#lines[@]}" -eq 2 ]
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
