#!/usr/bin/env bash
# Installs the Debian packages that building, testing and the demo need.
# Only acts as root; otherwise says what is missing and carries on, so a
# developer without root still gets clear failures from the tests.
set -euo pipefail

# command -> package that provides it
declare -A want=(
	[cc]=gcc [make]=make [qemu-system-x86_64]=qemu-system-x86
	[cpio]=cpio [socat]=socat [bats]=bats
	[curl]=curl [ssh]=openssh-client [sshd]=openssh-server [python3]=python3
	[strace]=strace [valgrind]=valgrind
	[wget]=wget [perl]=perl [node]=nodejs [javac]=openjdk-17-jdk-headless [modinfo]=kmod [ss]=iproute2
	[clang]=clang [nginx]=nginx-light [ncat]=ncat
	[psql]=postgresql-client [initdb]=postgresql-15 [man]=man-db [groff]=groff-base
	[vsftpd]=vsftpd
	# make bench: build/bench/bench.png
	[gnuplot]=gnuplot-nox
	# make musl: the library and test programs built for musl programs
	[musl-gcc]=musl-tools
	# make aarch64: the arm64 cross build, and qemu-aarch64 to run its tests
	[aarch64-linux-gnu-gcc]=gcc-aarch64-linux-gnu [qemu-aarch64]=qemu-user
	# the arm64 test VM (vsockify-vm --arch aarch64): its CPU, its userland
	[qemu-system-aarch64]=qemu-system-arm [mmdebstrap]=mmdebstrap
	# Go: the compiler for tests/helpers/go/, and real Go programs (they
	# make their own system calls, so only the supervisor reaches them)
	[go]=golang-go [hey]=hey [webhook]=webhook [caddy]=caddy
	[nats-server]=nats-server [websocketd]=websocketd
)
declare -A path_of=([sshd]=/usr/sbin/sshd [nginx]=/usr/sbin/nginx
	[initdb]=/usr/lib/postgresql/15/bin/initdb [vsftpd]=/usr/sbin/vsftpd
	[nats-server]=/usr/sbin/nats-server)

missing=()
for cmd in "${!want[@]}"; do
	p=${path_of[$cmd]:-}
	if [[ -n $p ]]; then [[ -x $p ]] && continue
	else command -v "$cmd" >/dev/null 2>&1 && continue; fi
	missing+=("${want[$cmd]}")
done
# A dynamic busybox may be installed; the VM's initramfs needs the static one.
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
# clang only recommends libFuzzer (make fuzz: -fsanitize=fuzzer).
dpkg -s libclang-rt-14-dev >/dev/null 2>&1 || missing+=(libclang-rt-14-dev)
# gcc-aarch64-linux-gnu only recommends the arm64 libc it links against.
dpkg -s libc6-dev-arm64-cross >/dev/null 2>&1 || missing+=(libc6-dev-arm64-cross)
# mmdebstrap only recommends what it uses to find the suite's keyring and
# codename; the arm64 userland build needs them.
for p in gpg libdistro-info-perl libdpkg-perl; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# Libraries that tests/helpers/go/ builds against (GOPATH=/usr/share/gocode).
dpkg -s golang-github-mdlayher-vsock-dev >/dev/null 2>&1 || missing+=(golang-github-mdlayher-vsock-dev)
[[ ${#missing[@]} -eq 0 ]] && exit 0

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [[ $(id -u) -ne 0 ]]; then
	echo "vsockify: missing packages: ${missing[*]} (run as root to install them)" >&2
	exit 0
fi
echo "vsockify: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
