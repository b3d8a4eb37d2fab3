#!/usr/bin/env bats
# The library's shape: what it exports, links and how the wrapper behaves.

bats_require_minimum_version 1.5.0
load ../lib/common

setup() { common_setup; }
teardown() { common_teardown; }

@test "library exports exactly the hooks" {
	run bash -c "nm -D --defined-only '$LIB' | awk '{print \$3}' | sort | tr '\n' ' '"
	[ "$status" -eq 0 ]
	[ "$output" = "accept accept4 bind close close_range connect dup dup2 dup3 epoll_ctl execl execle execlp execv execve execvp execvpe fcntl fcntl64 getaddrinfo gethostbyaddr gethostbyaddr_r gethostbyname gethostbyname2 gethostbyname2_r gethostbyname_r getnameinfo getpeername getsockname getsockopt listen posix_spawn posix_spawnp recvmsg sendmsg sendto setsockopt shutdown socket " ]
}

@test "library needs nothing beyond glibc (libc, libdl, the loader)" {
	run bash -c "objdump -p '$LIB' | awk '/NEEDED/{print \$2}' | sort | tr '\n' ' '"
	[ "$status" -eq 0 ]
	for lib in $output; do
		[[ $lib =~ ^(lib(c|dl|pthread)\.so\.|ld-linux) ]] || { echo "unexpected dependency $lib"; false; }
	done
}

@test "wrapper --help and --version" {
	run "$VSOCKIFY" --help
	[ "$status" -eq 0 ]
	[[ $output == *"Usage: vsockify"* ]]
	[[ $output == *"vsock-host.local"* ]]
	run "$VSOCKIFY" --version
	[ "$status" -eq 0 ]
	[[ $output =~ ^vsockify\ [0-9]+\.[0-9]+ ]]
}

@test "wrapper rejects unknown options and a missing command" {
	run "$VSOCKIFY" --bogus true
	[ "$status" -eq 2 ]
	[[ $output == *"unknown option '--bogus'"* ]]
	run "$VSOCKIFY"
	[ "$status" -eq 2 ]
	run -127 "$VSOCKIFY" /nonexistent/program
	[ "$status" -eq 127 ]
	[[ $output == *"/nonexistent/program"* ]]
}

@test "wrapper puts the library in front of an existing LD_PRELOAD" {
	other=$(ls /lib/x86_64-linux-gnu/libm.so.6)
	run env LD_PRELOAD="$other" "$VSOCKIFY" sh -c 'echo "$LD_PRELOAD"'
	[ "$status" -eq 0 ]
	[ "$output" = "$LIB $other" ]
	run "$VSOCKIFY" -- sh -c 'echo "$LD_PRELOAD"'
	[ "$output" = "$LIB" ]
}

@test "wrapper --debug turns on debug logging" {
	run "$VSOCKIFY" -d getent ahosts vsock-9.local
	[ "$status" -eq 0 ]
	[[ $output == *"vsockify["*"]: getaddrinfo(\"vsock-9.local\") -> CID 9"* ]]
}

@test "wrapper --cid reads the local CID or says why it cannot" {
	run "$VSOCKIFY" --cid
	if [ -e /dev/vsock ]; then
		[ "$status" -eq 0 ]
		[[ $output =~ ^[0-9]+$ ]]
	else
		[ "$status" -eq 1 ]
		[[ $output == *"/dev/vsock"* ]]
	fi
}
