#!/usr/bin/env bats
# Children made without fork(): a raw clone() or clone3(), in new PID and
# network namespaces (vsftpd's standalone mode), keep the translations they
# inherited and keep their own table in step; a child that shares the
# parent's memory (clone(CLONE_VM|CLONE_VFORK)) reads them but changes
# nothing of the parent's.  The same server runs over plain TCP (the
# oracle).  Namespaces need root, which the VM gives.  Ports 9701..9749.

load ../lib/common

CLONESERV=$ROOT/build/helpers/cloneserv

setup() {
	require_vm
	common_setup
	need_helper cloneserv
}
teardown() { common_teardown; }

# sessions NAME PORT HOST [preload]: two clients against a running server;
# what they received, then the server's log, with the addresses and the
# clients' ports made neutral.
sessions() {
	local name=$1 port=$2 host=$3 pre=() i
	[[ ${4:-} == preload ]] && pre=(env LD_PRELOAD="$LIB")
	for i in 1 2; do
		timeout 60 "${pre[@]}" "$CLONESERV" client "$host" "$port" || echo "client failed: $?"
	done
	# The server exits after its second session.
	for i in $(seq 200); do kill -0 "$(<"$TEST_TMP/$name.pid")" 2>/dev/null || break; sleep 0.1; done
	cat "$TEST_TMP/$name.log"
}

neutral() {
	sed -E -e 's/127\.0\.0\.1|127\.128\.0\.1/ADDR/g' -e "s/port=$1/port=PORT/g" \
		-e 's/(peer|accepted) (family=[A-Z_0-9]+ addr=[^ ]+) port=[0-9]+/\1 \2 port=N/'
}

# clone_like_tcp MODE TCP_PORT VSOCK_PORT: the session child's names over the
# shim are those over TCP.
clone_like_tcp() {
	local mode=$1 tport=$2 vport=$3 tcp vs
	start_bg "tcp-$mode" "$CLONESERV" serve "$mode" 127.0.0.1 "$tport" 2
	wait_for_log "tcp-$mode" listening
	tcp=$(sessions "tcp-$mode" "$tport" 127.0.0.1 | neutral "$tport")
	echo "tcp $mode:"; echo "$tcp"
	start_bg "vs-$mode" env LD_PRELOAD="$LIB" "$CLONESERV" serve "$mode" vsock-1.local "$vport" 2
	wait_for_log "vs-$mode" listening
	vs=$(sessions "vs-$mode" "$vport" vsock-1.local preload | neutral "$vport")
	echo "vsock $mode:"; echo "$vs"
	[[ $tcp == *"local family=AF_INET addr=ADDR port=PORT"* ]]
	diff <(echo "$tcp") <(echo "$vs")
}

@test "clone: the VM can make PID and network namespaces (what the clone tests and vsftpd use)" {
	run unshare --pid --net --fork true
	[ "$status" -eq 0 ]
}

@test "clone: a fork() session child sees its socket as AF_INET, as over TCP" {
	clone_like_tcp fork 9701 9702
}

@test "clone: a raw clone(SIGCHLD) session child sees its dup2'd socket as AF_INET, as over TCP" {
	clone_like_tcp clone 9703 9704
}

@test "clone: a raw clone into new PID and net namespaces (getpid() is 1) sees AF_INET, as over TCP" {
	clone_like_tcp clonens 9705 9706
}

@test "clone: a clone3 child in new PID and net namespaces sees AF_INET, as over TCP" {
	clone_like_tcp clone3 9707 9708
}

@test "clone: a CLONE_VM|CLONE_VFORK child reads AF_INET and leaves the parent's listener and socket as they were" {
	clone_like_tcp vm 9709 9710
}

# ---- vsftpd ----------------------------------------------------------------
# Debian's unmodified vsftpd in standalone mode runs every session in a
# clone(CLONE_NEWPID|CLONE_NEWIPC|CLONE_NEWNET) child that dup2s the socket
# to fds 0/1 and refuses it ("500 OOPS: can only support ipv4 and ipv6
# currently") unless getsockname/getpeername say AF_INET; passive data
# connections are bound to the control connection's local address.

# vsftpd_conf NAME LISTEN_ADDR PORT PASV_MIN PASV_MAX: an anonymous server
# with an upload directory, everything in $TEST_TMP/NAME.
vsftpd_conf() {
	local d=$TEST_TMP/$1
	mkdir -p "$d/root/pub" "$d/empty"
	chmod 755 "$d" "$d/root" "$d/empty"
	chown ftp "$d/root/pub"
	echo "hello over ftp" >"$d/root/hello.txt"
	cat >"$d/vsftpd.conf" <<-CFG
		listen=YES
		listen_ipv6=NO
		listen_address=$2
		listen_port=$3
		background=NO
		anonymous_enable=YES
		local_enable=NO
		write_enable=YES
		anon_upload_enable=YES
		anon_umask=022
		anon_root=$d/root
		secure_chroot_dir=$d/empty
		pasv_min_port=$4
		pasv_max_port=$5
		vsftpd_log_file=$d/vsftpd.log
		xferlog_enable=YES
		hide_ids=YES
	CFG
}

# ftp_session RUNNER... URL: ls, a download by EPSV and by PASV (with the
# address in the 227 reply, which vsftpd takes from getsockname), an upload
# (anon_umask 022: vsftpd serves anonymous users world-readable files only)
# and its download; one fact per line.
ftp_session() {
	local -a run=("${@:1:$#-1}")
	local url=${!#} out
	echo "nlst: $(timeout 60 "${run[@]}" curl -sS --list-only "$url/" | sort | tr '\n' ' ')"
	echo "list: $(timeout 60 "${run[@]}" curl -sS "$url/" | awk '{print $1, $5, $9}' | sort | tr '\n' ' ')"
	echo "epsv: $(timeout 60 "${run[@]}" curl -sS "$url/hello.txt" 2>&1)"
	echo "pasv: $(timeout 60 "${run[@]}" curl -sS --disable-epsv --no-ftp-skip-pasv-ip "$url/hello.txt" 2>&1)"
	echo "uploaded via $url" >"$TEST_TMP/up.txt"
	out=$(timeout 60 "${run[@]}" curl -sS -T "$TEST_TMP/up.txt" "$url/pub/up.txt" 2>&1)
	echo "upload: rc=$? $out"
	echo "back: $(timeout 60 "${run[@]}" curl -sS "$url/pub/up.txt" 2>&1)"
}

@test "vsftpd (standalone, sessions in clone() children in new namespaces): ls, passive download and upload, as over TCP" {
	[[ -x /usr/sbin/vsftpd ]] || { echo "vsftpd is not installed: make deps" >&2; return 1; }
	vsftpd_conf tcp 127.0.0.1 9721 9722 9729
	start_bg vsftpd-tcp /usr/sbin/vsftpd "$TEST_TMP/tcp/vsftpd.conf"
	wait_for_tcp_port 9721
	tcp=$(ftp_session env ftp://127.0.0.1:9721 | sed 's/127\.0\.0\.1:9721/URL/')
	echo "tcp:"; echo "$tcp"

	vsftpd_conf vs 127.128.0.1 9731 9732 9739
	start_bg vsftpd-vs env LD_PRELOAD="$LIB" /usr/sbin/vsftpd "$TEST_TMP/vs/vsftpd.conf"
	for _ in $(seq 300); do ss -H --vsock -ln | grep -q ':9731\b' && break; sleep 0.1; done
	vs=$(ftp_session env LD_PRELOAD="$LIB" ftp://vsock-1.local:9731 | sed 's/vsock-1\.local:9731/URL/')
	echo "vsock:"; echo "$vs"
	echo "vsftpd log:"; cat "$TEST_TMP/vs/vsftpd.log" || true

	[[ $tcp == *"epsv: hello over ftp"* && $tcp == *"upload: rc=0"* && $tcp == *"back: uploaded via ftp://URL"* ]]
	diff <(echo "$tcp") <(echo "$vs")
	[ "$(cat "$TEST_TMP/vs/root/pub/up.txt")" = "uploaded via ftp://vsock-1.local:9731" ]
	# vsftpd itself saw its client as the fake address, and served on vsock only.
	grep -q 'OK UPLOAD: Client "127.128.0.1"' "$TEST_TMP/vs/vsftpd.log"
	! grep -qi ':2603 ' /proc/net/tcp
}
