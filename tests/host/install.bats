#!/usr/bin/env bats
# make install / make uninstall: which files land where, that an installed
# wrapper finds its installed library, and that the man pages render.  No
# vsock traffic (the resolver answers vsock-*.local itself).

bats_require_minimum_version 1.5.0
load ../lib/common

# One install built for its own prefix, shared by the tests that need a
# wrapper whose compiled-in LIBDIR is the installed one.  It builds in a
# separate directory (B=...), so build/ is left alone.  A failed build is
# recorded, not fatal here, so that the tests which need it say why.
setup_file() {
	local b=$BATS_FILE_TMPDIR/b pfx=$BATS_FILE_TMPDIR/prefix
	stat -c '%Y %s %n' "$ROOT/build/libvsockify.so" "$ROOT/build/vsockify" \
		>"$BATS_FILE_TMPDIR/build-before" 2>&1 || true
	if make -s -C "$ROOT" B="$b" PREFIX="$pfx" install >"$BATS_FILE_TMPDIR/make.log" 2>&1; then
		echo 0 >"$BATS_FILE_TMPDIR/make.rc"
	else
		echo $? >"$BATS_FILE_TMPDIR/make.rc"
	fi
	stat -c '%Y %s %n' "$ROOT/build/libvsockify.so" "$ROOT/build/vsockify" \
		>"$BATS_FILE_TMPDIR/build-after" 2>&1 || true
}

setup() {
	common_setup
	PFX=$BATS_FILE_TMPDIR/prefix
}
teardown() { common_teardown; }

# The shared prefix install worked (else show make's output).
need_prefix_install() {
	if [[ $(<"$BATS_FILE_TMPDIR/make.rc") != 0 ]]; then
		echo "make B=... PREFIX=$PFX install failed:" >&2
		cat "$BATS_FILE_TMPDIR/make.log" >&2
		return 1
	fi
}

# Every file and symlink under a tree, relative, sorted, one per line.
files_under() {
	(cd "$1" && find . \( -type f -o -type l \) -printf '%P\n' | LC_ALL=C sort)
}

# The musl library is installed too where musl-gcc builds it (make musl).
# musl_lib LIBDIR: a newline and the musl library's path, or nothing.
musl_lib() { command -v musl-gcc >/dev/null && printf '\n%s' "$1/vsockify/musl/libvsockify.so"; true; }

@test "make install DESTDIR= PREFIX=/usr puts exactly the six files (seven with musl) in place" {
	run make -s -C "$ROOT" install DESTDIR="$TEST_TMP/root" PREFIX=/usr
	[ "$status" -eq 0 ]
	run files_under "$TEST_TMP/root"
	[ "$status" -eq 0 ]
	[ "$output" = "usr/bin/vsockify
usr/bin/vsockify-vm
usr/lib/vsockify/libvsockify.so$(musl_lib usr/lib)
usr/share/man/man1/vsockify-vm.1
usr/share/man/man1/vsockify.1
usr/share/man/man5/vsockify.conf.5" ]
	run stat -c '%a %n' "$TEST_TMP/root/usr/bin/vsockify" \
		"$TEST_TMP/root/usr/lib/vsockify/libvsockify.so" \
		"$TEST_TMP/root/usr/share/man/man1/vsockify.1" \
		"$TEST_TMP/root/usr/share/man/man5/vsockify.conf.5" \
		"$TEST_TMP/root/usr/bin/vsockify-vm" \
		"$TEST_TMP/root/usr/share/man/man1/vsockify-vm.1"
	[ "${lines[0]}" = "755 $TEST_TMP/root/usr/bin/vsockify" ]
	[ "${lines[1]}" = "644 $TEST_TMP/root/usr/lib/vsockify/libvsockify.so" ]
	[ "${lines[2]}" = "644 $TEST_TMP/root/usr/share/man/man1/vsockify.1" ]
	[ "${lines[3]}" = "644 $TEST_TMP/root/usr/share/man/man5/vsockify.conf.5" ]
	[ "${lines[4]}" = "755 $TEST_TMP/root/usr/bin/vsockify-vm" ]
	[ "${lines[5]}" = "644 $TEST_TMP/root/usr/share/man/man1/vsockify-vm.1" ]
	# The installed files are the ones in the tree.
	cmp "$ROOT/shim/vsockify-vm" "$TEST_TMP/root/usr/bin/vsockify-vm"
	cmp "$ROOT/man/vsockify-vm.1" "$TEST_TMP/root/usr/share/man/man1/vsockify-vm.1"
	cmp "$ROOT/man/vsockify.1" "$TEST_TMP/root/usr/share/man/man1/vsockify.1"
	cmp "$ROOT/man/vsockify.conf.5" "$TEST_TMP/root/usr/share/man/man5/vsockify.conf.5"
}

@test "a build with B= and PREFIX= installs the same files and leaves build/ alone" {
	need_prefix_install
	run files_under "$PFX"
	[ "$output" = "bin/vsockify
bin/vsockify-vm
lib/vsockify/libvsockify.so$(musl_lib lib)
share/man/man1/vsockify-vm.1
share/man/man1/vsockify.1
share/man/man5/vsockify.conf.5" ]
	[ -f "$BATS_FILE_TMPDIR/b/libvsockify.so" ]
	run diff "$BATS_FILE_TMPDIR/build-before" "$BATS_FILE_TMPDIR/build-after"
	[ "$status" -eq 0 ]
}

@test "the installed wrapper preloads the installed library" {
	need_prefix_install
	# Nothing next to the installed wrapper: it must use its compiled-in LIBDIR.
	[ ! -e "$PFX/bin/libvsockify.so" ]
	run env -u LD_PRELOAD "$PFX/bin/vsockify" env
	[ "$status" -eq 0 ]
	run grep '^LD_PRELOAD=' <<<"$output"
	[ "$output" = "LD_PRELOAD=$PFX/lib/vsockify/libvsockify.so" ]
}

@test "the installed wrapper preloads the installed musl library into a musl program" {
	need_prefix_install
	command -v musl-gcc >/dev/null || skip "no musl-gcc (make deps installs musl-tools)"
	[ -x "$ROOT/build/musl/helpers/gaidump" ] || skip "make musl has not been run"
	run env -u LD_PRELOAD "$PFX/bin/vsockify" --check "$ROOT/build/musl/helpers/gaidump"
	[ "$status" -eq 0 ]
	[[ $output == *"library $PFX/lib/vsockify/musl/libvsockify.so (a musl program"* ]]
	run env -u LD_PRELOAD "$PFX/bin/vsockify" "$ROOT/build/musl/helpers/gaidump" \
		hostent_r vsock-3.local 512
	[ "$status" -eq 0 ]
	[ "$output" = "rc=0 herr=0 result=vsock-3.local addr=127.128.0.3" ]
}

@test "the installed wrapper's library answers vsock-3.local" {
	need_prefix_install
	run env -u LD_PRELOAD "$PFX/bin/vsockify" getent hosts vsock-3.local
	[ "$status" -eq 0 ]
	[[ $output =~ (^|$'\n')(127\.128\.0\.3|100::7673:6f63:0:3)[[:space:]]+vsock-3\.local ]]
}

@test "man -l renders the three installed pages, groff -ww finds nothing to warn about" {
	need_prefix_install
	local page
	for page in "$PFX/share/man/man1/vsockify.1" "$PFX/share/man/man5/vsockify.conf.5" \
		"$PFX/share/man/man1/vsockify-vm.1"; do
		run env MANWIDTH=80 man -l "$page"
		[ "$status" -eq 0 ]
		[ -n "$output" ]
		run --separate-stderr groff -ww -man -Tutf8 "$page"
		[ "$status" -eq 0 ]
		[ -n "$output" ]
		[ -z "$stderr" ] || { echo "groff -ww $page: $stderr"; false; }
	done
	run env MANWIDTH=80 man -l "$PFX/share/man/man1/vsockify.1"
	[[ $output == *"VSOCKIFY(1)"* ]]
	[[ $output == *"run a TCP program over AF_VSOCK"* ]]
	run env MANWIDTH=80 man -l "$PFX/share/man/man5/vsockify.conf.5"
	[[ $output == *"VSOCKIFY.CONF(5)"* ]]
	[[ $output == *"listen  *:9000              vsock:any"* ]]
	run env MANWIDTH=80 man -l "$PFX/share/man/man1/vsockify-vm.1"
	[[ $output == *"VSOCKIFY-VM(1)"* ]]
	[[ $output == *"124    the --timeout stopped the VM"* ]]
}

@test "make uninstall leaves no file behind, and keeps a directory that is not empty" {
	make -s -C "$ROOT" install DESTDIR="$TEST_TMP/root" PREFIX=/usr >/dev/null
	run make -s -C "$ROOT" uninstall DESTDIR="$TEST_TMP/root" PREFIX=/usr
	[ "$status" -eq 0 ]
	run find "$TEST_TMP/root" -type f
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	# The directories only vsockify used are gone.
	[ ! -e "$TEST_TMP/root/usr/lib/vsockify" ]
	[ ! -e "$TEST_TMP/root/usr/share/man/man1" ]
	[ ! -e "$TEST_TMP/root/usr/share/man/man5" ]

	# Another package's page in man1 survives, and so does man1.
	mkdir -p "$TEST_TMP/root/usr/share/man/man1"
	echo other >"$TEST_TMP/root/usr/share/man/man1/other.1"
	make -s -C "$ROOT" install DESTDIR="$TEST_TMP/root" PREFIX=/usr >/dev/null
	run make -s -C "$ROOT" uninstall DESTDIR="$TEST_TMP/root" PREFIX=/usr
	[ "$status" -eq 0 ]
	run files_under "$TEST_TMP/root"
	[ "$output" = "usr/share/man/man1/other.1" ]
}
