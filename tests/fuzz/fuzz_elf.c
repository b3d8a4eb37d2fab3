/* vsk_classify_elf and vsk_script_interp on an arbitrary file.
 * Input: the whole file; seeds are small real and hand-made ELF files.
 * Checks: the classifier reads only inside the file it was told of, a
 * bounded number of times; its answer is consistent, and its kind does not
 * change when the file claims to be longer than it is (reads come back
 * short); a failing read gives -1 and a zeroed answer. */
#include "core/core.h"
#include "fuzz.h"

/* The most reads a file can cost: program headers, section headers, names
 * and the Go scan, each a window of 4 KiB at a time. */
#define MAX_READS 4096

struct mem_file {
	const uint8_t *p;
	size_t n;          /* bytes really there */
	uint64_t claimed;  /* the size the classifier was told */
	uint64_t fail_at;  /* a read touching this offset fails */
	unsigned reads;
};

static long mem_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct mem_file *m = ctx;

	m->reads++;
	FUZZ_CHECK(m->reads <= MAX_READS);
	FUZZ_CHECK(len > 0 && off < m->claimed && len <= m->claimed - off);
	if (m->fail_at >= off && m->fail_at - off < len)
		return -1;
	if (off >= m->n)
		return 0;
	if (len > m->n - off)
		len = m->n - off;
	memcpy(buf, m->p + off, len);
	return (long)len;
}

static void check_info(const struct vsk_prog_info *pi)
{
	FUZZ_CHECK(pi->kind == VSK_PROG_UNKNOWN || pi->kind == VSK_PROG_DYNAMIC ||
		   pi->kind == VSK_PROG_STATIC);
	FUZZ_CHECK(memchr(pi->interp, '\0', sizeof(pi->interp)) != NULL);
	if (pi->kind != VSK_PROG_DYNAMIC)
		FUZZ_CHECK(pi->interp[0] == '\0');
	if (pi->kind == VSK_PROG_UNKNOWN)
		FUZZ_CHECK(!pi->go);
}

static int classify(const uint8_t *data, size_t size, uint64_t claimed, uint64_t fail_at,
		    struct vsk_prog_info *pi)
{
	struct mem_file m = { data, size, claimed, fail_at, 0 };

	memset(pi, 0xa5, sizeof(*pi)); /* every field must be written */
	return vsk_classify_elf(mem_read, &m, claimed, pi);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_forbid_sockets();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vsk_prog_info pi, longer, failed;
	static const struct vsk_prog_info zero;

	FUZZ_CHECK(classify(data, size, size, UINT64_MAX, &pi) == 0);
	check_info(&pi);

	/* Short reads past the real end: the headers that were there say
	 * the same, or the file looks truncated (unknown).  Go may differ: a
	 * section table that ran past the end is valid in the longer file. */
	FUZZ_CHECK(classify(data, size, (uint64_t)size + 4096, UINT64_MAX, &longer) == 0);
	check_info(&longer);
	if (longer.kind != VSK_PROG_UNKNOWN)
		FUZZ_CHECK(longer.kind == pi.kind && !strcmp(longer.interp, pi.interp) &&
			   longer.foreign_arch == pi.foreign_arch);

	/* A read that fails somewhere the last byte chooses. */
	if (size > 0) {
		int rc = classify(data, size, size, (uint64_t)data[size - 1] * 64, &failed);

		FUZZ_CHECK(rc == 0 || rc == -1);
		if (rc == -1)
			FUZZ_CHECK(!memcmp(&failed, &zero, sizeof(zero)));
		else
			check_info(&failed);
	}

	/* The script helper on the same bytes, into a buffer just big enough. */
	char *head = malloc(size ? size : 1);
	char out[64];
	size_t n = size < VSK_SCRIPT_HEAD ? size : VSK_SCRIPT_HEAD;

	memcpy(head, data, n);
	int len = vsk_script_interp(head, n, out, sizeof(out));
	if (len >= 0) {
		FUZZ_CHECK(len > 0 && (size_t)len < sizeof(out) && strlen(out) == (size_t)len);
		FUZZ_CHECK(n >= 2 && head[0] == '#' && head[1] == '!');
		FUZZ_CHECK(!strpbrk(out, " \t\n") && memmem(head, n, out, (size_t)len));
	}
	free(head);
	return 0;
}
