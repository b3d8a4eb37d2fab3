/* novsock [--errno] [--] COMMAND [ARGS...]: run COMMAND under a seccomp
 * filter that refuses socket(AF_VSOCK, ...) and socketpair(AF_VSOCK, ...).
 * The host test suites run under it, so a shim mistake that would dial this
 * machine's own vsock device fails loudly instead.  Default action: kill the
 * process (SIGSYS); --errno: fail with EPERM.  The filter is inherited by
 * every child and survives exec.  Exit status 125/126/127 as env(1). */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#else
#error "novsock: only x86_64 and aarch64 are supported"
#endif
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "novsock: args[0] low word offset assumes little-endian"
#endif

#define LOAD(field) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, field))
#define RET(action) BPF_STMT(BPF_RET | BPF_K, action)

static int usage(void)
{
	fputs("usage: novsock [--errno] [--] COMMAND [ARGS...]\n", stderr);
	return 125;
}

int main(int argc, char **argv)
{
	unsigned int deny = SECCOMP_RET_KILL_PROCESS;
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--errno") == 0) {
			deny = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
		} else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else {
			fprintf(stderr, "novsock: unknown option '%s'\n", argv[i]);
			return usage();
		}
	}
	if (i >= argc)
		return usage();

	struct sock_filter filter[] = {
		LOAD(arch),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0),
		RET(SECCOMP_RET_KILL_PROCESS), /* a foreign ABI could dodge the checks */
		LOAD(nr),
#ifdef __X32_SYSCALL_BIT
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, __X32_SYSCALL_BIT, 0, 1),
		RET(SECCOMP_RET_KILL_PROCESS), /* x32 numbers: same reason */
#endif
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 1, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socketpair, 0, 3),
		LOAD(args[0]), /* the kernel reads the domain as an int: low word */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_VSOCK, 0, 1),
		RET(deny),
		RET(SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(filter) / sizeof(filter[0]), .filter = filter };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
		perror("novsock: cannot install the seccomp filter");
		return 125;
	}
	execvp(argv[i], argv + i);
	fprintf(stderr, "novsock: %s: %s\n", argv[i], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
