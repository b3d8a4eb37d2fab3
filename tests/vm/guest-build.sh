#!/usr/bin/env bash
# guest-build.sh COMMAND [ARGS...]: in the test VM, run COMMAND with build/
# holding the build for the guest's CPU.  A guest of another architecture
# than the machine (aarch64 on x86-64) finds its cross build in
# build/ARCH/ (make ARCH=aarch64); it is bind-mounted over build/, so the
# suites' paths ($ROOT/build/libvsockify.so and so on) need no change.
set -euo pipefail
repo=$(cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/../.." && pwd -P)
guest_build=$repo/build/$(uname -m)
if [[ ${VSOCKIFY_IN_VM:-} == 1 && -d $guest_build ]]; then
    [[ -f $guest_build/libvsockify.so ]] ||
        { echo "guest-build.sh: $guest_build has no libvsockify.so: run make ARCH=$(uname -m)" >&2; exit 125; }
    mount --bind "$guest_build" "$repo/build" ||
        { echo "guest-build.sh: cannot mount $guest_build over $repo/build" >&2; exit 125; }
fi
exec "$@"
