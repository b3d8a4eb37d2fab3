#!/usr/bin/env bash
# make demo: inside the test VM, an unmodified curl fetches a page from a
# native AF_VSOCK server through vsockify.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ ${VSOCKIFY_IN_VM:-} == 1 ]] || { echo "demo: run me through tests/vm/run-in-vm.sh" >&2; exit 1; }
work=$(mktemp -d)
printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nHello from a native AF_VSOCK server (CID 1, port 8080)\n' >"$work/resp"
socat VSOCK-LISTEN:8080,fork,reuseaddr SYSTEM:"sed -n '/^\r*\$/q' >/dev/null; cat $work/resp" &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
sleep 1

echo "\$ vsockify curl -v http://vsock-1.local:8080/"
build/vsockify curl -sS -v http://vsock-1.local:8080/ 2>&1 | grep -Ev '^(> |< |\* *$|\{|\})' || true
echo
echo "\$ strace -e trace=socket,connect,dup3 vsockify curl -s http://vsock-host.local:8080/   (the syscalls)"
strace -f -e trace=socket,connect,dup3 build/vsockify curl -s http://vsock-host.local:8080/ 2>&1 |
	grep -E 'AF_VSOCK|dup3|SOCK_STREAM, IPPROTO_TCP|Hello'
