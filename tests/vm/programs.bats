#!/usr/bin/env bats
# More unmodified programs, each with its own resolver and socket habits:
# wget, socat's TCP addresses, perl's IO::Socket, node (libuv), the JVM
# (which uses AF_INET6 sockets with IPv4-mapped addresses) and ncat (which
# resolves every host with SOCK_DGRAM hints, then dials TCP).

load ../lib/common

setup() {
	require_vm
	common_setup
	printf 'HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nfrom vsk\n' >"$TEST_TMP/resp"
	start_vsock_http web 8080 "$TEST_TMP/resp"
	start_bg echo socat -d -d -t 5 VSOCK-LISTEN:7007,fork,reuseaddr EXEC:cat
	wait_for_log echo "listening on"
}
teardown() { common_teardown; }

@test "wget fetches over vsock" {
	run "$VSOCKIFY" wget -q -O - http://vsock-1.local:8080/
	[ "$status" -eq 0 ]
	[ "$output" = "from vsk" ]
}

@test "socat's own TCP client and TCP-LISTEN server work over vsock" {
	run bash -c "echo ping | '$VSOCKIFY' socat -t 5 - TCP:vsock-1.local:7007"
	[ "$status" -eq 0 ]
	[ "$output" = "ping" ]
	start_bg tcpsrv "$VSOCKIFY" socat -d -d TCP-LISTEN:8081,bind=vsock-any.local,reuseaddr,fork SYSTEM:'echo served to $SOCAT_PEERADDR'
	wait_for_log tcpsrv "listening on"
	run python3 -c '
import socket
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM); s.settimeout(30)
s.connect((1, 8081)); print(s.makefile().readline().strip())'
	[ "$output" = "served to 127.128.0.1" ]
}

@test "perl IO::Socket::INET client" {
	run "$VSOCKIFY" perl -MIO::Socket::INET -e '
my $s = IO::Socket::INET->new(PeerAddr => "vsock-host.local:7007") or die "connect: $@";
print $s "perl\n"; my $l = <$s>; print $l, $s->peerhost, ":", $s->peerport, "\n";'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "perl" ]
	[ "${lines[1]}" = "127.128.0.2:7007" ]
}

@test "node: http client and an http server on vsock-any.local" {
	run "$VSOCKIFY" node -e '
require("http").get("http://vsock-1.local:8080/", r => {
  let d = ""; r.on("data", c => d += c);
  r.on("end", () => console.log(d.trim(), r.socket.remoteAddress, r.socket.remotePort));
}).on("error", e => { console.log("error", e.message); process.exit(1); });'
	[ "$status" -eq 0 ]
	[ "$output" = "from vsk 127.128.0.1 8080" ]
	start_bg nodesrv "$VSOCKIFY" node -e '
require("http").createServer((q, r) => r.end("node " + q.socket.remoteAddress + "\n"))
  .listen(8082, "vsock-any.local", () => console.log("listening"));'
	wait_for_log nodesrv listening 60
	run "$VSOCKIFY" curl -sS http://vsock-1.local:8082/
	[ "$status" -eq 0 ]
	[ "$output" = "node 127.128.0.1" ]
}

@test "the JVM connects through its AF_INET6 socket with a v4-mapped fake" {
	cat >"$TEST_TMP/Echo.java" <<-'JAVA'
		public class Echo {
		  public static void main(String[] a) throws Exception {
		    try (var s = new java.net.Socket("vsock-1.local", 7007)) {
		      s.getOutputStream().write("jvm\n".getBytes());
		      var in = new java.io.BufferedReader(new java.io.InputStreamReader(s.getInputStream()));
		      System.out.println(in.readLine() + " " + s.getRemoteSocketAddress() + " " + s.getLocalAddress());
		    }
		  }
		}
	JAVA
	run strace -f -qq -e trace=socket,connect -E LD_PRELOAD="$LIB" -o "$TEST_TMP/trace" java "$TEST_TMP/Echo.java"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "jvm vsock-1.local/127.128.0.1:7007 /127.128.0.1" ]
	grep -q 'socket(AF_INET6, SOCK_STREAM' "$TEST_TMP/trace"
	grep -q 'connect([0-9]*, {sa_family=AF_VSOCK, svm_cid=VMADDR_CID_LOCAL, svm_port=0x1b5f' "$TEST_TMP/trace"
}

@test "ncat client (SOCK_DGRAM hints, then TCP) talks to a native vsock echo, IPv4 and IPv6" {
	run bash -c "echo ncat | timeout 60 '$VSOCKIFY' ncat -v vsock-1.local 7007 2>'$TEST_TMP/err'"
	cat "$TEST_TMP/err"
	[ "$status" -eq 0 ]
	[ "$output" = "ncat" ]
	grep -q 'Connected to 127.128.0.1:7007' "$TEST_TMP/err"
	run bash -c "echo ncat6 | timeout 60 '$VSOCKIFY' ncat -6 -v vsock-host.local 7007 2>'$TEST_TMP/err'"
	cat "$TEST_TMP/err"
	[ "$status" -eq 0 ]
	[ "$output" = "ncat6" ]
	grep -q 'Connected to 100::7673:6f63:0:2:7007' "$TEST_TMP/err"
}

@test "ncat -l vsock-any.local serves a native vsock client" {
	start_bg ncsrv "$VSOCKIFY" ncat -v -l vsock-any.local 8093 \
		--sh-exec 'read l; echo "ncat got $l from $NCAT_REMOTE_ADDR"'
	wait_for_log ncsrv "Listening on" 60
	# a native client that reads the answer before it closes: ncat's
	# --sh-exec relay stops at the client's EOF (over TCP too)
	run timeout 60 python3 -c '
import socket
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM); s.settimeout(30)
s.connect((1, 8093)); s.sendall(b"hi\n"); print(s.makefile().readline().strip())'
	echo "$output"
	cat "$TEST_TMP/ncsrv.log"
	[ "$output" = "ncat got hi from 127.128.0.1" ]
	grep -q 'Listening on 127.255.255.255:8093' "$TEST_TMP/ncsrv.log"
}

@test "ncat -u to a vsock name fails at connect with EPROTOTYPE and a log line" {
	run timeout 60 env VSOCKIFY_LOG=warn "$VSOCKIFY" ncat -u vsock-1.local 7007 </dev/null
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"vsockify["*"]: connect to 127.128.0.1:7007: only TCP (SOCK_STREAM) can be carried"* ]]
	[[ $output == *"Protocol wrong type for socket"* ]]
}
