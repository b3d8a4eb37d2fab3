#!/usr/bin/env bash
# shellcheck disable=SC2012  # ls -t on purpose: pick the newest cached .deb
# build-vm.sh [OUTDIR] -- build the tiny VM that the vsockify tests run in.
#
# Why a VM at all: AF_VSOCK traffic must never touch the real host (its CIDs
# belong to the hypervisor / other guests).  Inside a throw-away QEMU guest the
# vsock_loopback transport makes CID 1 (local) and CID 2 (host) loop back to
# the guest itself, so tests can exercise real AF_VSOCK sockets safely.
#
# Output (default OUTDIR = <repo>/build/vm):
#   OUTDIR/vmlinuz            the stock Debian kernel (linux-image-amd64's dependency)
#   OUTDIR/initramfs.cpio.gz  static busybox + /init + the few modules we need
#
# The guest does not get its own root filesystem: /init mounts the host's "/"
# read-only over virtio-9p and chroots into it (see run-in-vm.sh), so every
# tool installed on the host (bash, bats, socat, python3, the freshly built
# shim) is available inside the VM without copying anything.
#
# Environment:
#   VSOCKIFY_CACHE      where the kernel .deb is cached
#                       (default ${XDG_CACHE_HOME:-$HOME/.cache}/vsockify)
#   VSOCKIFY_VM_REBUILD=1  rebuild even if the outputs look up to date
set -euo pipefail

prog=vsockify-build-vm
die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }
note() { printf '%s: %s\n' "$prog" "$*" >&2; }

script_path=$(readlink -f -- "${BASH_SOURCE[0]}")
script_dir=$(dirname -- "$script_path")
repo_root=$(cd -- "$script_dir/../.." && pwd -P)

outdir=${1:-$repo_root/build/vm}
mkdir -p -- "$outdir"
outdir=$(cd -- "$outdir" && pwd -P)

# ---------------------------------------------------------------------------
# Fast path: the outputs only depend on this script (the /init text lives
# here) and on the kernel package, so "newer than this script" is good enough.
# ---------------------------------------------------------------------------
up_to_date() {
    [[ -s $outdir/vmlinuz && -s $outdir/initramfs.cpio.gz &&
       $outdir/vmlinuz -nt $script_path &&
       $outdir/initramfs.cpio.gz -nt $script_path ]]
}
if [[ ${VSOCKIFY_VM_REBUILD:-0} != 1 ]] && up_to_date; then
    exit 0
fi

# Several test runs may start at once (e.g. parallel CI jobs sharing a
# checkout); serialise the build and let the losers reuse the winner's output.
exec 9>"$outdir/.build.lock"
flock 9
if [[ ${VSOCKIFY_VM_REBUILD:-0} != 1 ]] && up_to_date; then
    exit 0
fi

# Modules to load, in dependency order (the kernel package ships no
# modules.dep -- depmod runs at install time -- so the order is spelled out).
modules=(
    virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
    netfs fscache 9pnet 9pnet_virtio 9p
    vsock vmw_vsock_virtio_transport_common vsock_loopback
)

# ---------------------------------------------------------------------------
# Tools.  As root (CI) we install what is missing; otherwise we explain.
# ---------------------------------------------------------------------------
apt_updated=0
apt_update_once() {
    if [[ $apt_updated == 0 ]]; then
        note "running apt-get update"
        apt-get update -q >&2
        apt_updated=1
    fi
}

missing=()
have() { command -v "$1" >/dev/null 2>&1; }
have qemu-system-x86_64 || missing+=(qemu-system-x86)
# The initramfs needs a *static* busybox; the dynamic "busybox" package also
# installs /bin/busybox, so ask dpkg which one is there.
if [[ $(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null) != *" installed" ]] ||
   [[ ! -x /bin/busybox ]]; then
    missing+=(busybox-static)
fi
have cpio || missing+=(cpio)
have socat || missing+=(socat)
have kmod || missing+=(kmod)

if ((${#missing[@]})); then
    if [[ $(id -u) != 0 ]]; then
        die "missing packages: ${missing[*]} -- install them with:
    sudo apt-get install ${missing[*]}
(or run this script as root and it installs them itself)"
    fi
    apt_update_once
    note "installing: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
fi
for t in dpkg-deb apt-get apt-cache gzip flock; do
    have "$t" || die "required tool '$t' not found (this script expects Debian/Ubuntu)"
done

# ---------------------------------------------------------------------------
# Kernel package: whatever linux-image-amd64 currently depends on.
# ---------------------------------------------------------------------------
cache=${VSOCKIFY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vsockify}
mkdir -p -- "$cache"

kernel_pkg_name() {
    # "apt-cache depends" prints e.g. "  Depends: linux-image-6.1.0-56-amd64".
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *|\{0,1\}Depends: *\(linux-image-[^ <>]*\).*$/\1/p' | head -n1
}

kpkg=$(kernel_pkg_name || true)
if [[ -z $kpkg && $(id -u) == 0 ]]; then
    apt_update_once            # a fresh container may have no package lists yet
    kpkg=$(kernel_pkg_name || true)
fi

kdeb=
if [[ -n $kpkg ]]; then
    # Reuse a cached copy of exactly this package if we have one.
    kdeb=$(ls -1t -- "$cache/${kpkg}"_*_amd64.deb 2>/dev/null | head -n1 || true)
    if [[ -z $kdeb ]]; then
        note "downloading $kpkg into $cache (~70 MB, once)"
        # Download into a scratch dir first so an interrupted download never
        # leaves a truncated .deb that would be "reused" next time.
        # As root, apt would drop to the _apt user, which cannot write into
        # root's private cache dir (harmless but noisy warning): don't.
        apt_dl=(apt-get download -q)
        [[ $(id -u) != 0 ]] || apt_dl+=(-o APT::Sandbox::User=root)
        dl=$(mktemp -d -- "$cache/.download.XXXXXX")
        if ! (cd -- "$dl" && "${apt_dl[@]}" "$kpkg" >&2); then
            rm -rf -- "$dl"
            if [[ $(id -u) == 0 && $apt_updated == 0 ]]; then
                apt_update_once   # stale lists: the version may be gone upstream
                dl=$(mktemp -d -- "$cache/.download.XXXXXX")
                (cd -- "$dl" && "${apt_dl[@]}" "$kpkg" >&2) ||
                    { rm -rf -- "$dl"; die "apt-get download $kpkg failed"; }
            else
                die "apt-get download $kpkg failed (try 'apt-get update' as root)"
            fi
        fi
        mv -- "$dl"/*.deb "$cache"/
        rm -rf -- "$dl"
        kdeb=$(ls -1t -- "$cache/${kpkg}"_*_amd64.deb | head -n1)
    fi
else
    # No package lists and not root: fall back to any cached kernel.
    kdeb=$(ls -1t -- "$cache"/linux-image-*-amd64_*_amd64.deb 2>/dev/null | head -n1 || true)
    [[ -n $kdeb ]] || die "cannot resolve linux-image-amd64 (no apt lists?); run 'apt-get update' as root"
    note "apt cannot resolve linux-image-amd64; using cached $(basename -- "$kdeb")"
fi

# ---------------------------------------------------------------------------
# Unpack and assemble.
# ---------------------------------------------------------------------------
work=$(mktemp -d -t vsockify-build-vm.XXXXXX)
trap 'rm -rf -- "$work"' EXIT

note "unpacking $(basename -- "$kdeb")"
dpkg-deb -x "$kdeb" "$work/kernel"

vmlinuz=$(ls -1 -- "$work"/kernel/boot/vmlinuz-* 2>/dev/null | head -n1 || true)
[[ -n $vmlinuz ]] || die "no /boot/vmlinuz-* in $kdeb"
kver=${vmlinuz##*/vmlinuz-}
moddir=$work/kernel/lib/modules/$kver
[[ -d $moddir ]] || die "no /lib/modules/$kver in $kdeb"

root=$work/initramfs
mkdir -p -- "$root"/{bin,dev,proc,sys,newroot,lib/modules}

# Static busybox plus one symlink per applet (sh, mount, insmod, chroot, ...).
cp -- /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
    [[ $applet == busybox ]] || ln -sf busybox "$root/bin/$applet"
done
ln -s bin "$root/sbin"

# Copy the modules flat into /lib/modules, decompressed (busybox insmod does
# not understand .ko.xz/.ko.zst), and record the load order for /init.
: >"$root/lib/modules/load-order"
for m in "${modules[@]}"; do
    # modules.builtin lists built-ins as kernel/<path>/<name>.ko; module
    # names may use '-' or '_' interchangeably, so match both.
    pat="/(${m}|${m//_/-})\\.ko\$"
    if [[ -f $moddir/modules.builtin ]] && grep -Eq "$pat" "$moddir/modules.builtin"; then
        note "module $m is built into $kver; skipping"
        continue
    fi
    src=$(find "$moddir/kernel" -regextype posix-extended \
              -regex ".*/(${m}|${m//_/-})\\.ko(\\.xz|\\.zst|\\.gz)?" -print -quit)
    if [[ -z $src ]]; then
        note "module $m not found in $kver; skipping"
        continue
    fi
    dst=$root/lib/modules/$m.ko
    case $src in
        *.ko)     cp -- "$src" "$dst" ;;
        *.ko.xz)  xz -dc -- "$src" >"$dst" ;;
        *.ko.zst) zstd -qdc -- "$src" >"$dst" ;;
        *.ko.gz)  gzip -dc -- "$src" >"$dst" ;;
    esac
    echo "$m" >>"$root/lib/modules/load-order"
done

# /init: runs as PID 1 inside the guest.  Everything the per-run command needs
# (the script, the cwd, env) comes from the writable 9p share "vsockify", so
# the kernel command line stays free of quoting problems.
cat >"$root/init" <<'INIT'
#!/bin/sh
# vsockify VM /init (generated by tests/vm/build-vm.sh).
# Protocol with run-in-vm.sh, all files on the writable 9p share "vsockify":
#   cmd  bash script to run (cd + env + exec COMMAND)   [host -> guest]
#   log  COMMAND's stdout+stderr                        [guest -> host]
#   rc   COMMAND's exit status, written last            [guest -> host]
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

say() { echo "vsockify-init: $*"; }
fail() {
    say "FATAL: $*"
    # Leave no doubt on the console, then stop the VM; the host notices that
    # no rc file was written and reports the failure.
    sync
    poweroff -f
    echo o >/proc/sysrq-trigger
    sleep 5
    exit 1
}

# Keep anything we might need from the initramfs' /proc before it goes away.
cmdline=$(cat /proc/cmdline)
case " $cmdline " in *" vsockify.debug=1 "*) set -x ;; esac

while read -r m; do
    insmod "/lib/modules/$m.ko" || say "warning: insmod $m failed"
done </lib/modules/load-order

# The host's / (read-only).  cache=loose makes exec/stat over 9p much cheaper
# under TCG; the tree is read-only for the VM's short life, so staleness is
# not a concern.
R=/newroot
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro hostroot $R ||
    fail "cannot mount the host root (9p tag hostroot)"

mount -t proc proc $R/proc || fail "mount proc"
mount -t sysfs sysfs $R/sys || fail "mount sysfs"
mount -t devtmpfs devtmpfs $R/dev || fail "mount devtmpfs"
# devtmpfs has no /dev/fd & co (udev normally adds them); bash process
# substitution and many scripts want them.
ln -sfn /proc/self/fd $R/dev/fd
ln -sfn /proc/self/fd/0 $R/dev/stdin
ln -sfn /proc/self/fd/1 $R/dev/stdout
ln -sfn /proc/self/fd/2 $R/dev/stderr
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $R/dev/pts || fail "mount devpts"
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm || fail "mount /dev/shm"
mount -t tmpfs -o mode=1777 tmpfs $R/tmp || fail "mount /tmp"
mount -t tmpfs -o mode=755 tmpfs $R/run || fail "mount /run"
mount -t tmpfs -o mode=1777 tmpfs $R/var/tmp || fail "mount /var/tmp"

# The writable per-run share (a fresh host temp dir), uncached so that log
# writes reach the host immediately and can be streamed live.
S=/run/vsockify
mkdir -p $R$S
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none vsockify $R$S ||
    fail "cannot mount the command share (9p tag vsockify)"
[ -f $R$S/cmd ] || fail "no command script on the share"

# A checkout under /tmp (a CI clone, say) is hidden by the tmpfs above, so
# run-in-vm.sh shares it separately and we mount it back at the same path.
if [ -f $R$S/repo_path ]; then
    P=$(cat $R$S/repo_path)
    mkdir -p $R$P
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro repo $R$P ||
        fail "cannot mount the checkout (9p tag repo) at $P"
fi

# Loopback networking; the chroot shares this network namespace.
ip link set lo up || say "warning: cannot bring up lo"
hostname vsockify-vm 2>/dev/null || true
mkdir -p $R/tmp/home

# Run the command with a clean, predictable environment.  Extra variables
# passed through from the host (CI, VSOCKIFY_*) are exported by the cmd script.
env -i HOME=/tmp/home \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    TERM=dumb LANG=C.UTF-8 \
    chroot $R /bin/bash $S/cmd </dev/null >$R$S/log 2>&1
rc=$?

# rc is written last: its presence tells the host the command really ran.
echo $rc >$R$S/rc.tmp && mv $R$S/rc.tmp $R$S/rc || say "cannot write exit status"
sync
poweroff -f
echo o >/proc/sysrq-trigger
sleep 5
INIT
chmod 755 "$root/init"

# Assemble atomically so a concurrent or interrupted build never leaves a
# half-written initramfs that looks up to date.
(cd -- "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
    gzip -6 >"$outdir/.initramfs.cpio.gz.tmp"
cp -- "$vmlinuz" "$outdir/.vmlinuz.tmp"
mv -f -- "$outdir/.vmlinuz.tmp" "$outdir/vmlinuz"
mv -f -- "$outdir/.initramfs.cpio.gz.tmp" "$outdir/initramfs.cpio.gz"
printf '%s\n' "$kver" >"$outdir/kernel-version"

note "built $outdir/{vmlinuz,initramfs.cpio.gz} (kernel $kver, $(wc -l <"$root/lib/modules/load-order") modules)"
