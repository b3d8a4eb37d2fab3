#!/usr/bin/env bash
# run-in-vm.sh [VSOCKIFY-VM OPTIONS] -- COMMAND [ARGS...]
#
# The project's way into its test VM: shim/vsockify-vm (man/vsockify-vm.1)
# with the settings every suite expects.
#   * software emulation (VSOCKIFY_VM_ACCEL=kvm to change that), 30 min
#     unless --timeout says otherwise;
#   * the checkout visible at its own path, also when it lies under /tmp;
#   * with --arch aarch64 (on x86-64), COMMAND sees build/aarch64 as build/,
#     so that every suite runs the arm64 build (tests/vm/guest-build.sh).
set -euo pipefail
repo=$(cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/../.." && pwd -P)

opts=()
while (($#)) && [[ $1 != -- ]]; do opts+=("$1"); shift; done
(($#)) && shift
exec "$repo/shim/vsockify-vm" --accel "${VSOCKIFY_VM_ACCEL:-tcg}" --timeout 1800 \
    --share-ro "$repo" "${opts[@]}" -- "$repo/tests/vm/guest-build.sh" "$@"
