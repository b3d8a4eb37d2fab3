/* Program classification: is a file a dynamic ELF (the preload library
 * loads into it), a static one, a Go program, one for another machine?
 *
 * The file may be hostile: every offset and count is checked against the
 * file size before use, nothing is read twice on trust, and the amounts
 * read are capped (VSK_ELF_HEADERS_MAX, VSK_GO_SCAN_MAX).  Both classes and
 * both byte orders are parsed, so a foreign ELF is classified too. */
#include <elf.h>
#include <stddef.h>
#include <string.h>

#include "core.h"

/* This build's machine, to tell foreign ELF files. */
#if defined(__x86_64__) && defined(__ILP32__)
#define HOST_MACHINE EM_X86_64
#define HOST_CLASS ELFCLASS32 /* x32 */
#elif defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#define HOST_CLASS ELFCLASS64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#define HOST_CLASS ELFCLASS64
#elif defined(__i386__)
#define HOST_MACHINE EM_386
#define HOST_CLASS ELFCLASS32
#elif defined(__arm__)
#define HOST_MACHINE EM_ARM
#define HOST_CLASS ELFCLASS32
#elif defined(__riscv) && __riscv_xlen == 64
#define HOST_MACHINE EM_RISCV
#define HOST_CLASS ELFCLASS64
#else
#define HOST_MACHINE EM_NONE /* not listed: foreign_arch is never set */
#define HOST_CLASS ELFCLASSNONE
#endif
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_DATA ELFDATA2MSB
#else
#define HOST_DATA ELFDATA2LSB
#endif

#define GO_MAGIC "\xff Go buildinf:"
#define GO_MAGIC_LEN (sizeof(GO_MAGIC) - 1)
#define GO_HEADER_LEN 32 /* magic, pointer size, flags, padding */
#define GO_ALIGN 16
#define GO_SECTION ".go.buildinfo"
#define INTERP_MAX 4096 /* PATH_MAX: the kernel refuses a longer PT_INTERP */

struct elf_file {
	vsk_read_at_fn read_at;
	void *ctx;
	uint64_t size;
	bool failed; /* read_at returned an error */
	bool is64, big;
};

/* The last block read, so that neighbouring headers cost one read. */
struct window {
	uint64_t off;
	size_t len;
	unsigned char buf[4096];
};

/* n bytes at off, or NULL if they are not all in the file. */
static const unsigned char *get(struct elf_file *f, struct window *w, uint64_t off, size_t n)
{
	if (n > sizeof(w->buf) || off > f->size || n > f->size - off)
		return NULL;
	if (off >= w->off && off - w->off <= w->len && n <= w->len - (off - w->off))
		return w->buf + (off - w->off);

	size_t want = f->size - off < sizeof(w->buf) ? (size_t)(f->size - off) : sizeof(w->buf);
	long got = f->read_at(f->ctx, off, w->buf, want);

	if (got < 0 || (size_t)got > want) {
		f->failed = true;
		w->len = 0;
		return NULL;
	}
	w->off = off;
	w->len = (size_t)got;
	return n <= w->len ? w->buf : NULL; /* short: the file shrank */
}

static uint64_t decode(const unsigned char *p, size_t n, bool big)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * (big ? n - 1 - i : i));
	return v;
}

/* Field m of an ELF structure T (Ehdr, Phdr, Shdr) at p, in f's class. */
#define FIELD(f, p, T, m)                                                              \
	((f)->is64 ? decode((p) + offsetof(Elf64_##T, m), sizeof(((Elf64_##T *)0)->m), \
			    (f)->big)                                                  \
		   : decode((p) + offsetof(Elf32_##T, m), sizeof(((Elf32_##T *)0)->m), \
			    (f)->big))
#define SIZE(f, T) ((f)->is64 ? sizeof(Elf64_##T) : sizeof(Elf32_##T))

/* 1 if the section table names a .go.buildinfo section, 0 if it does not,
 * -1 if there is no usable section table. */
static int find_go_section(struct elf_file *f, const unsigned char *eh, struct window *headers,
			   struct window *names)
{
	uint64_t shoff = FIELD(f, eh, Ehdr, e_shoff);
	uint64_t shnum = FIELD(f, eh, Ehdr, e_shnum);
	uint64_t shstrndx = FIELD(f, eh, Ehdr, e_shstrndx);
	size_t entsize = SIZE(f, Shdr);
	const unsigned char *sh;

	if (shoff == 0 || FIELD(f, eh, Ehdr, e_shentsize) != entsize || shoff > f->size)
		return -1;
	/* Extended numbering: the real values are in section 0. */
	if (shnum == 0 || shstrndx == SHN_XINDEX) {
		if (!(sh = get(f, headers, shoff, entsize)))
			return -1;
		if (shnum == 0)
			shnum = FIELD(f, sh, Shdr, sh_size);
		if (shstrndx == SHN_XINDEX)
			shstrndx = FIELD(f, sh, Shdr, sh_link);
	}
	if (shnum == 0 || shnum > VSK_ELF_HEADERS_MAX / entsize || shstrndx >= shnum)
		return -1;

	if (!(sh = get(f, headers, shoff + shstrndx * entsize, entsize)) ||
	    FIELD(f, sh, Shdr, sh_type) == SHT_NOBITS)
		return -1;
	uint64_t str_off = FIELD(f, sh, Shdr, sh_offset);
	uint64_t str_size = FIELD(f, sh, Shdr, sh_size);
	if (str_off > f->size || str_size > f->size - str_off)
		return -1;

	for (uint64_t i = 0; i < shnum; i++) {
		if (!(sh = get(f, headers, shoff + i * entsize, entsize)))
			return -1;
		uint64_t name = FIELD(f, sh, Shdr, sh_name);
		const unsigned char *s;

		if (name < str_size && str_size - name >= sizeof(GO_SECTION) &&
		    (s = get(f, names, str_off + name, sizeof(GO_SECTION))) &&
		    !memcmp(s, GO_SECTION, sizeof(GO_SECTION)))
			return 1;
	}
	return 0;
}

/* debug/buildinfo's search: the magic, 16-byte aligned in memory, with a
 * whole header after it, near the start of the first data segment. */
static bool find_go_magic(struct elf_file *f, struct window *w, uint64_t off, uint64_t vaddr,
			  uint64_t filesz)
{
	if (off > f->size)
		return false;
	uint64_t len = filesz < f->size - off ? filesz : f->size - off;
	if (len > VSK_GO_SCAN_MAX)
		len = VSK_GO_SCAN_MAX;

	for (uint64_t pos = (GO_ALIGN - vaddr % GO_ALIGN) % GO_ALIGN; pos + GO_HEADER_LEN <= len;
	     pos += GO_ALIGN) {
		const unsigned char *p = get(f, w, off + pos, GO_HEADER_LEN);

		if (!p)
			return false;
		if (!memcmp(p, GO_MAGIC, GO_MAGIC_LEN))
			return true;
	}
	return false;
}

/* The ELF header and program headers: kind, interp, foreign_arch. */
static void classify(struct elf_file *f, struct window *w, struct window *w2,
		     struct vsk_prog_info *out)
{
	const unsigned char *eh = get(f, w, 0, EI_NIDENT);

	if (!eh || memcmp(eh, ELFMAG, SELFMAG) ||
	    (eh[EI_CLASS] != ELFCLASS32 && eh[EI_CLASS] != ELFCLASS64) ||
	    (eh[EI_DATA] != ELFDATA2LSB && eh[EI_DATA] != ELFDATA2MSB))
		return;
	f->is64 = eh[EI_CLASS] == ELFCLASS64;
	f->big = eh[EI_DATA] == ELFDATA2MSB;
	if (!(eh = get(f, w, 0, SIZE(f, Ehdr))))
		return;
	/* Copied: eh points into the window, which the reads below reuse. */
	unsigned char ehdr[sizeof(Elf64_Ehdr)];
	memcpy(ehdr, eh, SIZE(f, Ehdr));
	eh = ehdr;

	uint64_t machine = FIELD(f, eh, Ehdr, e_machine);
	out->foreign_arch = HOST_MACHINE != EM_NONE &&
			    (machine != HOST_MACHINE || eh[EI_CLASS] != HOST_CLASS ||
			     eh[EI_DATA] != HOST_DATA);

	uint64_t type = FIELD(f, eh, Ehdr, e_type);
	uint64_t phoff = FIELD(f, eh, Ehdr, e_phoff);
	uint64_t phnum = FIELD(f, eh, Ehdr, e_phnum);
	size_t entsize = SIZE(f, Phdr);
	if ((type != ET_EXEC && type != ET_DYN) || FIELD(f, eh, Ehdr, e_phentsize) != entsize ||
	    phnum == 0 || phnum > VSK_ELF_HEADERS_MAX / entsize || phoff > f->size)
		return;

	bool has_interp = false, has_data = false;
	uint64_t interp_off = 0, interp_size = 0, data_off = 0, data_vaddr = 0, data_size = 0;
	for (uint64_t i = 0; i < phnum; i++) {
		const unsigned char *ph = get(f, w, phoff + i * entsize, entsize);

		if (!ph)
			return; /* truncated: the kernel would not run it */
		uint64_t ptype = FIELD(f, ph, Phdr, p_type);
		uint64_t flags = FIELD(f, ph, Phdr, p_flags);
		/* The kernel, like debug/buildinfo, takes the first of each. */
		if (ptype == PT_INTERP && !has_interp) {
			has_interp = true;
			interp_off = FIELD(f, ph, Phdr, p_offset);
			interp_size = FIELD(f, ph, Phdr, p_filesz);
		} else if (ptype == PT_LOAD && (flags & (PF_X | PF_W)) == PF_W && !has_data) {
			has_data = true;
			data_off = FIELD(f, ph, Phdr, p_offset);
			data_vaddr = FIELD(f, ph, Phdr, p_vaddr);
			data_size = FIELD(f, ph, Phdr, p_filesz);
		}
	}

	if (has_interp) {
		/* Rules of the kernel's load_elf_binary: else ENOEXEC. */
		const unsigned char *s = NULL;
		if (interp_size >= 2 && interp_size <= INTERP_MAX)
			s = get(f, w, interp_off, (size_t)interp_size);
		if (!s || s[interp_size - 1] != '\0')
			return;
		size_t len = strlen((const char *)s);
		if (len < sizeof(out->interp))
			memcpy(out->interp, s, len + 1);
		out->kind = VSK_PROG_DYNAMIC;
	} else {
		out->kind = VSK_PROG_STATIC;
	}

	/* A section table, when there is one, is the cheap and exact answer;
	 * the scan is for files stripped of it. */
	int section = find_go_section(f, eh, w, w2);
	if (section >= 0)
		out->go = section;
	else if (has_data && !f->failed)
		out->go = find_go_magic(f, w, data_off, data_vaddr, data_size);
}

int vsk_classify_elf(vsk_read_at_fn read_at, void *ctx, uint64_t file_size,
		     struct vsk_prog_info *out)
{
	struct elf_file f = { .read_at = read_at, .ctx = ctx, .size = file_size };
	struct window w, w2;

	memset(out, 0, sizeof(*out));
	w.len = w2.len = 0;
	w.off = w2.off = 0;
	classify(&f, &w, &w2, out);
	if (f.failed) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

static bool ends_path(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\0';
}

int vsk_script_interp(const char *head, size_t n, char *out, size_t cap)
{
	size_t i = 2;

	if (n < 2 || head[0] != '#' || head[1] != '!')
		return -1;
	while (i < n && (head[i] == ' ' || head[i] == '\t'))
		i++;
	size_t start = i;
	while (i < n && !ends_path(head[i]))
		i++;
	/* A path running to the end of a full head may go on past it: the
	 * kernel says ENOEXEC then. */
	if (i == start || (i == n && n >= VSK_SCRIPT_HEAD) || i - start >= cap)
		return -1;
	memcpy(out, head + start, i - start);
	out[i - start] = '\0';
	return (int)(i - start);
}

/* "prefix" then at least one more character. */
static bool starts(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);

	return !strncmp(s, prefix, n) && s[n];
}

enum vsk_libc vsk_interp_libc(const char *interp)
{
	const char *base;

	if (!interp || !*interp)
		return VSK_LIBC_UNKNOWN;
	base = strrchr(interp, '/');
	base = base ? base + 1 : interp;
	if (starts(base, "ld-musl-"))
		return VSK_LIBC_MUSL;
	/* ld-linux-x86-64.so.2, ld-linux.so.2, ld-linux-aarch64.so.1,
	 * ld-linux-armhf.so.3, ld-linux-riscv64-lp64d.so.1, ld64.so.2 (ppc64),
	 * ld64.so.1 (s390x), ld.so.1 (ppc32, mips). */
	if (starts(base, "ld-linux") || starts(base, "ld64.so.") || starts(base, "ld.so."))
		return VSK_LIBC_GLIBC;
	return VSK_LIBC_UNKNOWN;
}

const char *vsk_libc_name(enum vsk_libc libc)
{
	switch (libc) {
	case VSK_LIBC_GLIBC: return "glibc";
	case VSK_LIBC_MUSL: return "musl";
	default: return "unknown libc";
	}
}
