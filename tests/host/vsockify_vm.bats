#!/usr/bin/env bats
# vsockify-vm (man/vsockify-vm.1): exit statuses, streams, shares, the
# environment, the cache, KVM or TCG, and an aarch64 guest.  The guests
# boot under software emulation unless a test says otherwise; the only
# vsock traffic is inside them (loopback, no vsock device).

bats_require_minimum_version 1.5.0
load ../lib/common

setup() {
	common_setup
	VM=$ROOT/build/vsockify-vm
	[[ -x $VM ]] || { echo "build/vsockify-vm is missing: run make" >&2; return 1; }
	command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86 is not installed (make deps)" >&2; return 1; }
}
teardown() { common_teardown; }

# The cache the other tests filled (build/vsockify-vm's default).
shared_cache() { echo "${VSOCKIFY_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vsockify-vm}"; }

# own_cache DIR: a cache of this test's own, with the shared cache's built
# x86_64 files and kernel packages (hard links where possible): no download.
own_cache() {
	local shared
	shared=$(shared_cache)
	mkdir -p "$1/debs"
	cp -r "$shared/x86_64" "$1/"
	cp -l "$shared"/debs/*.deb "$1/debs/" 2>/dev/null || cp "$shared"/debs/*.deb "$1/debs/"
}

@test "usage errors exit 125 with a message, and boot nothing" {
	run --separate-stderr "$VM"
	[ "$status" -eq 125 ]
	[[ $stderr == *"no COMMAND given"* ]]
	run --separate-stderr "$VM" --arch sparc -- true
	[ "$status" -eq 125 ]
	[[ $stderr == *"unsupported --arch 'sparc'"* ]]
	run --separate-stderr "$VM" --mem 12 -- true
	[ "$status" -eq 125 ]
	[[ $stderr == *"bad --mem '12'"* ]]
	run --separate-stderr "$VM" --frobnicate -- true
	[ "$status" -eq 125 ]
	[[ $stderr == *"unknown option: --frobnicate"* ]]
	run --separate-stderr "$VM" -e '1BAD=x' -- true
	[ "$status" -eq 125 ]
	[[ $stderr == *"bad -e '1BAD=x'"* ]]
	run --separate-stderr "$VM" --share /proc/self -- true
	[ "$status" -eq 125 ]
	run --separate-stderr "$VM" --arch aarch64 --accel kvm -- true
	[ "$status" -eq 125 ]
	[[ $stderr == *"--accel kvm: /dev/kvm is not usable here"* ]]
}

@test "the command's stdout and stderr come back apart, and its exit status with them" {
	run --separate-stderr "$VM" --accel tcg -- bash -c 'echo to-out; echo to-err >&2; exit 7'
	[ "$status" -eq 7 ]
	[ "$output" = "to-out" ]
	[[ $stderr == *to-err* ]]
	[[ $stderr == *"booting a x86_64 guest, software emulation (TCG), 2 vCPUs, 2048 MiB"* ]]
	# A signal's status is 128+N, as bash reports it.
	run --separate-stderr "$VM" -q --accel tcg -- bash -c 'kill -TERM $$'
	[ "$status" -eq 143 ]
	[ "$output" = "" ]
}

@test "--timeout stops the VM with status 124 and says so" {
	run --separate-stderr "$VM" -q --accel tcg --timeout 8 -- sleep 600
	[ "$status" -eq 124 ]
	[[ $stderr == *"timed out: the command did not finish within 8 s"* ]]
}

@test "the current directory under /tmp is visible; --share writes back, --share-ro does not" {
	mkdir "$TEST_TMP/cwd" "$TEST_TMP/rw" "$TEST_TMP/ro"
	echo here >"$TEST_TMP/cwd/file"
	echo kept >"$TEST_TMP/ro/old"
	cd "$TEST_TMP/cwd"
	run --separate-stderr "$VM" -q --accel tcg --share "$TEST_TMP/rw" --share-ro "$TEST_TMP/ro" -- bash -c '
		pwd; cat file
		echo written >"$0/rw/new"
		cat "$0/ro/old"
		if { echo x >"$0/ro/new"; } 2>/dev/null; then echo ro-writable; fi
		# the rest of the guest is read-only too, except its tmpfs
		if touch /usr/vsockify-vm-probe 2>/dev/null; then echo root-writable; fi
		touch /tmp/scratch && echo tmp-writable' "$TEST_TMP"
	[ "$status" -eq 0 ]
	[ "$output" = "$TEST_TMP/cwd
here
kept
tmp-writable" ]
	[ "$(cat "$TEST_TMP/rw/new")" = written ]
	[ ! -e "$TEST_TMP/ro/new" ]
	[ ! -e /usr/vsockify-vm-probe ]
}

@test "only CI, VSOCKIFY_* and -e variables reach the command" {
	run env CI=yes VSOCKIFY_LOG=debug HIDDEN=secret FROM_CALLER='a b' \
		"$VM" -q --accel tcg -e SET='x y' -e FROM_CALLER -- \
		bash -c 'echo "CI=$CI LOG=$VSOCKIFY_LOG HIDDEN=${HIDDEN-unset} SET=$SET FROM=$FROM_CALLER IN_VM=$VSOCKIFY_IN_VM ARCH=$VSOCKIFY_VM_ARCH HOME=$HOME"'
	[ "$status" -eq 0 ]
	[ "$output" = "CI=yes LOG=debug HIDDEN=unset SET=x y FROM=a b IN_VM=1 ARCH=x86_64 HOME=/tmp/home" ]
}

@test "AF_VSOCK loops back in the guest on CID 1 and 2, and CID 3 is unreachable" {
	run "$VM" -q --accel tcg -- python3 -c '
import socket
srv = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
srv.bind((socket.VMADDR_CID_ANY, 7001)); srv.listen()
for cid in (1, 2):
    c = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM); c.connect((cid, 7001))
    a, _ = srv.accept(); c.sendall(b"ping"); print(cid, a.recv(4).decode())
c = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
try: c.connect((3, 7001))
except OSError as e: print(3, e.strerror)'
	[ "$status" -eq 0 ]
	[ "$output" = "1 ping
2 ping
3 No such device" ]
}

@test "--accel auto picks KVM when /dev/kvm is usable, falls back to TCG when its guest never starts, and remembers" {
	# VSOCKIFY_VM_KVM_BOOT_WAIT=0: a KVM guest must have started at once,
	# which none does, so the fallback is always taken where KVM is chosen.
	# A cache of its own, so that the verdict is this test's.
	local c=$TEST_TMP/cache
	own_cache "$c"
	run --separate-stderr env VSOCKIFY_VM_CACHE="$c" VSOCKIFY_VM_KVM_BOOT_WAIT=0 "$VM" -- uname -m
	[ "$status" -eq 0 ]
	[ "$output" = x86_64 ]
	[[ $stderr == *"booting a x86_64 guest, software emulation (TCG),"* ]]
	if [[ -c /dev/kvm && -r /dev/kvm && -w /dev/kvm ]]; then
		[[ $stderr == *"booting a x86_64 guest, KVM,"* ]]
		[[ $stderr == *"the KVM guest did not start within 0 s: booting again under software emulation"* ]]
		[ "$(cat "$c/kvm-never-started")" = "$(uname -r)" ]
		# the next run does not try again
		run --separate-stderr env VSOCKIFY_VM_CACHE="$c" "$VM" -- true
		[ "$status" -eq 0 ]
		[[ $stderr == *"KVM guests did not start on this machine before"* ]]
		[[ $stderr != *"guest, KVM"* ]]
	else
		[[ $stderr != *KVM* ]]
		[ ! -e "$c/kvm-never-started" ]
	fi
	# An explicit --accel tcg never tries KVM.
	run --separate-stderr env VSOCKIFY_VM_CACHE="$c" "$VM" --accel tcg -- true
	[ "$status" -eq 0 ]
	[[ $stderr != *KVM* ]]
}

@test "the cache: the first --prepare builds, the second reuses, a changed stamp rebuilds" {
	local c=$TEST_TMP/cache
	# The kernel package from the shared cache, so nothing is downloaded.
	own_cache "$c"
	rm -rf "$c/x86_64"
	run --separate-stderr env VSOCKIFY_VM_CACHE="$c" "$VM" --prepare
	[ "$status" -eq 0 ]
	[[ $stderr == *"built the x86_64 kernel"* ]]
	[ -s "$c/x86_64/vmlinuz" ] && [ -s "$c/x86_64/initramfs.cpio.gz" ]
	run --separate-stderr env VSOCKIFY_VM_CACHE="$c" "$VM" --prepare
	[ "$status" -eq 0 ]
	[[ $stderr != *built* ]]
	[[ $stderr == *"ready: $c/x86_64"* ]]
	echo old >"$c/x86_64/stamp"
	run --separate-stderr env VSOCKIFY_VM_CACHE="$c" "$VM" --prepare
	[ "$status" -eq 0 ]
	[[ $stderr == *"built the x86_64 kernel"* ]]
}

@test "a VM that cannot boot gives status 125 and the end of its console" {
	local c=$TEST_TMP/cache
	own_cache "$c"
	# up to date for this vsockify-vm first, or the corrupt file is rebuilt
	env VSOCKIFY_VM_CACHE="$c" "$VM" -q --prepare
	head -c 4096 /dev/urandom >"$c/x86_64/initramfs.cpio.gz"
	run --separate-stderr env VSOCKIFY_VM_CACHE="$c" "$VM" --accel tcg --timeout 120 -- echo never
	[ "$status" -eq 125 ]
	[ "$output" = "" ]
	[[ $stderr == *"the VM stopped (qemu status "*") before the command reported its status"* ]]
	[[ $stderr == *"last console lines"* ]]
}

@test "a missing qemu is named as the Debian package to install" {
	mkdir "$TEST_TMP/bin"
	local f
	for f in /usr/bin/* /bin/*; do
		case ${f##*/} in qemu-system-*) continue ;; esac
		[[ -e $TEST_TMP/bin/${f##*/} ]] || ln -s "$f" "$TEST_TMP/bin/${f##*/}"
	done
	run --separate-stderr env PATH="$TEST_TMP/bin" "$VM" -- true
	[ "$status" -eq 125 ]
	[[ $stderr == *"missing Debian packages: qemu-system-x86"* ]]
	[[ $stderr == *"sudo apt-get install qemu-system-x86"* ]]
}

@test "an installed vsockify-vm runs a command, as build/ does" {
	make -s -C "$ROOT" install DESTDIR="$TEST_TMP/root" PREFIX=/usr >/dev/null
	run "$TEST_TMP/root/usr/bin/vsockify-vm" -q --accel tcg -- sh -c 'echo installed ok'
	[ "$status" -eq 0 ]
	[ "$output" = "installed ok" ]
}

@test "an aarch64 guest: its own userland, the machine's / at /host, vsock loopback" {
	command -v qemu-system-aarch64 >/dev/null || { echo "qemu-system-arm is not installed (make deps)" >&2; false; }
	cd "$TEST_TMP"
	echo from-host >here
	run --separate-stderr "$VM" --arch aarch64 -- bash -c '
		uname -m; cat here; head -c 5 /host/etc/debian_version; echo
		file -L /bin/bash | grep -o "ARM aarch64"
		python3 -c "
import socket
s = socket.socket(socket.AF_VSOCK); s.bind((socket.VMADDR_CID_ANY, 7002)); s.listen()
c = socket.socket(socket.AF_VSOCK); c.connect((1, 7002)); print(\"vsock\", c.getpeername())"'
	[ "$status" -eq 0 ]
	[[ $stderr == *"booting a aarch64 guest, software emulation (TCG)"* ]]
	[ "$output" = "aarch64
from-host
$(head -c 5 /etc/debian_version)
ARM aarch64
vsock (1, 7002)" ]
}

@test "mmdebstrap runs with fds 0-2 only, whatever the caller holds open" {
	# Its apt hooks are "cat >&N" run by dash, which reads one-digit fds:
	# a caller holding fds up to 9 (bats does) made N two digits.
	own_cache "$TEST_TMP/cache"
	mkdir "$TEST_TMP/bin"
	printf '#!/bin/sh\nls /proc/self/fd >"%s"; exit 1\n' "$TEST_TMP/fds" >"$TEST_TMP/bin/mmdebstrap"
	chmod +x "$TEST_TMP/bin/mmdebstrap"
	PATH=$TEST_TMP/bin:$PATH VSOCKIFY_VM_CACHE=$TEST_TMP/cache \
		run --separate-stderr "$VM" --arch aarch64 -- true 5>/dev/null 11>/dev/null
	[ "$status" -eq 125 ]
	[[ $stderr == *"mmdebstrap failed"* ]]
	# ls's own: its output and the directory it reads
	[ "$(tr '\n' ' ' <"$TEST_TMP/fds")" = "0 1 2 3 " ]
}

@test "a signal to vsockify-vm stops its VM: status 143, no qemu left behind" {
	cd "$TEST_TMP"
	"$VM" -q --accel tcg -- sh -c 'echo started; sleep 600' >"$TEST_TMP/out" 2>&1 &
	local pid=$! i
	for ((i = 0; i < 300; i++)); do grep -q started "$TEST_TMP/out" && break; sleep 0.2; done
	grep -q started "$TEST_TMP/out"
	# the qemu of this run: the one sharing this test's directory
	run pgrep -f "qemu-system-x86_64 .*path=$TEST_TMP,"
	[ "$status" -eq 0 ]
	kill -TERM "$pid"
	local st=0
	wait "$pid" || st=$?
	[ "$st" -eq 143 ]
	for ((i = 0; i < 50; i++)); do pgrep -f "qemu-system-x86_64 .*path=$TEST_TMP," >/dev/null || break; sleep 0.2; done
	run pgrep -f "qemu-system-x86_64 .*path=$TEST_TMP,"
	[ "$status" -eq 1 ]
}
