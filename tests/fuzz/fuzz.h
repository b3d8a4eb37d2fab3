/* Shared helpers for the libFuzzer targets: reading the input, checks that
 * abort (so libFuzzer saves the input), and a guard against sockets. */
#ifndef VSOCKIFY_FUZZ_H
#define VSOCKIFY_FUZZ_H

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/core.h"

/* Unlike assert(), never compiled out. */
#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

/* Fixed-size fields read as zero once the input runs out, so every input
 * is valid and short inputs still reach the interesting code. */
static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
	uint32_t v = 0;
	size_t k = in->n < 4 ? in->n : 4;

	memcpy(&v, in->p, k);
	in->p += k;
	in->n -= k;
	return v;
}

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	uint8_t v = 0;

	if (in->n) {
		v = *in->p++;
		in->n--;
	}
	return v;
}

/* The bytes up to sep (consumed) or the end, as a malloc'd C string, so
 * ASan sees any read past its NUL. */
static inline char *fuzz_str(struct fuzz_in *in, char sep)
{
	const uint8_t *end = memchr(in->p, sep, in->n);
	size_t len = end ? (size_t)(end - in->p) : in->n;
	char *s = malloc(len + 1);

	if (!s)
		abort();
	memcpy(s, in->p, len);
	s[len] = '\0';
	in->p += len + (end != NULL);
	in->n -= len + (end != NULL);
	return s;
}

/* What every fake range must satisfy, however it was configured. */
static inline void fuzz_check_net(const struct vsk_fake_net *net)
{
	FUZZ_CHECK(net->prefix4 >= 8 && net->prefix4 <= 24);
	FUZZ_CHECK((net->base4 & ((1u << (32 - net->prefix4)) - 1u)) == 0);
	FUZZ_CHECK(net->prefix6 >= 16 && net->prefix6 <= 96);
	for (unsigned bit = net->prefix6; bit < 128; bit++)
		FUZZ_CHECK(!(net->base6.s6_addr[bit / 8] & (0x80u >> (bit % 8))));
	FUZZ_CHECK(!IN6_IS_ADDR_V4MAPPED(&net->base6) && !IN6_IS_ADDR_UNSPECIFIED(&net->base6));
}

static inline void fuzz_on_sigsys(int sig)
{
	static const char msg[] = "fuzz: a socket was created; fuzz targets must never do that\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing better to do */
	}
	abort(); /* libFuzzer reports the input that got here */
}

/* Fuzzing runs on the host: any socket(), even glibc's own (AI_ADDRCONFIG's
 * netlink, the RFC 3484 sort, a DNS query), is a test failure. */
static inline void fuzz_forbid_sockets(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socketpair, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
	};
	struct sock_fprog prog = { .len = sizeof(filter) / sizeof(filter[0]), .filter = filter };

	signal(SIGSYS, fuzz_on_sigsys);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
		perror("fuzz: cannot install the no-socket filter");
		exit(1);
	}
}

#endif
