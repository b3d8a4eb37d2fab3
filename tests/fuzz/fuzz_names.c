/* vsk_parse_name / vsk_format_name.
 * Input: a name, then optionally NUL, a CID (4 bytes) and a buffer size
 * (1 byte) for formatting; plain-text seeds are just names. */
#include <ctype.h>
#include <strings.h>

#include "core/core.h"
#include "fuzz.h"

/* Formatting any CID gives a name that parses back to it, and a short
 * buffer gives -1 or exactly the same text. */
static void check_format(uint32_t cid, size_t small_len)
{
	char full[VSK_NAME_MAX];
	char *small = malloc(small_len); /* exact: ASan sees any overrun */
	uint32_t back = ~cid;
	int n = vsk_format_name(cid, full, sizeof(full));

	FUZZ_CHECK(n > 0 && (size_t)n == strlen(full));
	FUZZ_CHECK(vsk_parse_name(full, &back) == VSK_NAME_CID && back == cid);

	int m = vsk_format_name(cid, small, small_len);
	if ((size_t)n < small_len)
		FUZZ_CHECK(m == n && strcmp(small, full) == 0);
	else
		FUZZ_CHECK(m == -1);
	free(small);
}

/* Same verdict (and CID) for a variant of the name. */
static void check_same(const char *variant, enum vsk_name_kind kind, uint32_t cid)
{
	uint32_t c2 = ~cid;

	FUZZ_CHECK(vsk_parse_name(variant, &c2) == kind);
	if (kind == VSK_NAME_CID)
		FUZZ_CHECK(c2 == cid);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint32_t cid;

	(void)argc;
	(void)argv;
	fuzz_forbid_sockets();
	FUZZ_CHECK(vsk_parse_name(NULL, &cid) == VSK_NAME_NOT_OURS);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	char *name = fuzz_str(&in, '\0');
	size_t len = strlen(name);
	uint32_t cid = 0;
	enum vsk_name_kind kind = vsk_parse_name(name, &cid);

	if (kind != VSK_NAME_NOT_OURS)
		FUZZ_CHECK(strncasecmp(name, "vsock-", 6) == 0);
	if (kind == VSK_NAME_CID)
		check_format(cid, VSK_NAME_MAX);

	/* Case-insensitive, and one trailing dot changes nothing. */
	char *variant = malloc(len + 2);
	for (size_t i = 0; i <= len; i++)
		variant[i] = (char)toupper((unsigned char)name[i]);
	check_same(variant, kind, cid);
	for (size_t i = 0; i <= len; i++)
		variant[i] = (char)tolower((unsigned char)name[i]);
	check_same(variant, kind, cid);
	if (len == 0 || name[len - 1] != '.') {
		memcpy(variant, name, len);
		memcpy(variant + len, ".", 2);
		check_same(variant, kind, cid);
	}
	free(variant);

	uint32_t any_cid = fuzz_u32(&in);
	check_format(any_cid, fuzz_u8(&in) % (VSK_NAME_MAX + 1));
	free(name);
	return 0;
}
