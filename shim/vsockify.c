/* vsockify: run a command with libvsockify.so preloaded. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#ifndef VSK_VERSION
#define VSK_VERSION "dev"
#endif
#ifndef VSK_LIBDIR
#define VSK_LIBDIR "/usr/local/lib/vsockify"
#endif
#define LIBNAME "libvsockify.so"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: vsockify [-d|--debug] [--] COMMAND [ARGS...]\n"
		"       vsockify --cid | --help | --version\n"
		"\n"
		"Run COMMAND so that TCP connections and listeners on vsock names\n"
		"use AF_VSOCK instead:\n"
		"  vsock-<CID>.local   a CID (0..4294967294)\n"
		"  vsock-host.local    CID 2      vsock-local.local       CID 1\n"
		"  vsock-hypervisor.local CID 0   vsock-any.local         any CID (bind)\n"
		"\n"
		"  -d, --debug   log every translation (VSOCKIFY_LOG=debug)\n"
		"      --cid     print this machine's local vsock CID\n"
		"  -h, --help    show this help\n"
		"      --version show the version\n"
		"\n"
		"Environment: VSOCKIFY_LOG=off|error|warn|info|debug, VSOCKIFY_LOG_FILE,\n"
		"VSOCKIFY_FAKE_NET4, VSOCKIFY_FAKE_NET6 (see docs/design.md).\n");
}

static int print_local_cid(void)
{
	unsigned int cid;
	int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) != 0) {
		fprintf(stderr, "vsockify: cannot read the local CID from /dev/vsock: %s\n",
			strerror(errno));
		return 1;
	}
	close(fd);
	printf("%u\n", cid);
	return 0;
}

/* Next to this binary (a build tree), else the installed private libdir. */
static int find_library(char *out, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = '\0';
		snprintf(out, len, "%s/" LIBNAME, dirname(self));
		if (access(out, R_OK) == 0)
			return 0;
	}
	snprintf(out, len, "%s/" LIBNAME, VSK_LIBDIR);
	return access(out, R_OK);
}

static int set_preload(const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	char *value;
	int rc;

	if (!old || !*old)
		return setenv("LD_PRELOAD", lib, 1);
	if (strstr(old, lib))
		return 0;
	if (asprintf(&value, "%s %s", lib, old) < 0)
		return -1;
	rc = setenv("LD_PRELOAD", value, 1);
	free(value);
	return rc;
}

int main(int argc, char **argv)
{
	char lib[PATH_MAX + 32];
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (!strcmp(a, "-d") || !strcmp(a, "--debug")) {
			setenv("VSOCKIFY_LOG", "debug", 1);
		} else if (!strcmp(a, "--cid")) {
			return print_local_cid();
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--version")) {
			printf("vsockify %s\n", VSK_VERSION);
			return 0;
		} else {
			fprintf(stderr, "vsockify: unknown option '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (find_library(lib, sizeof(lib)) != 0) {
		fprintf(stderr, "vsockify: cannot find %s next to this program or in %s\n",
			LIBNAME, VSK_LIBDIR);
		return 127;
	}
	if (set_preload(lib) != 0) {
		fprintf(stderr, "vsockify: cannot set LD_PRELOAD: %s\n", strerror(errno));
		return 127;
	}
	execvp(argv[i], argv + i);
	fprintf(stderr, "vsockify: %s: %s\n", argv[i], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
