/* The vsock-*.local namespace: parsing and formatting. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core.h"

#define PREFIX "vsock-"
#define SUFFIX ".local"

static const struct {
	const char *word;
	uint32_t cid;
} keywords[] = {
	{ "hypervisor", VSK_CID_HYPERVISOR },
	{ "local", VSK_CID_LOCAL },
	{ "host", VSK_CID_HOST },
	{ "any", VSK_CID_ANY },
};

/* Strict decimal: digits only, no sign, no blanks, at most the largest
 * addressable CID (VMADDR_CID_ANY itself is spelled "any"). */
static int parse_cid_digits(const char *s, size_t n, uint32_t *cid)
{
	uint64_t v = 0;

	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v >= VSK_CID_ANY)
			return -1;
	}
	*cid = (uint32_t)v;
	return 0;
}

enum vsk_name_kind vsk_parse_name(const char *name, uint32_t *cid)
{
	size_t len, plen = sizeof(PREFIX) - 1, slen = sizeof(SUFFIX) - 1;
	const char *label;
	size_t label_len;

	if (!name || strncasecmp(name, PREFIX, plen) != 0)
		return VSK_NAME_NOT_OURS;
	len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len < plen + slen || strncasecmp(name + len - slen, SUFFIX, slen) != 0)
		return VSK_NAME_NOT_OURS;

	label = name + plen;
	label_len = len - plen - slen;
	for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		if (strlen(keywords[i].word) == label_len &&
		    strncasecmp(label, keywords[i].word, label_len) == 0) {
			*cid = keywords[i].cid;
			return VSK_NAME_CID;
		}
	}
	return parse_cid_digits(label, label_len, cid) == 0 ? VSK_NAME_CID
							  : VSK_NAME_MALFORMED;
}

int vsk_format_name(uint32_t cid, char *buf, size_t len)
{
	int n = cid == VSK_CID_ANY ? snprintf(buf, len, PREFIX "any" SUFFIX)
				   : snprintf(buf, len, PREFIX "%u" SUFFIX, cid);
	return (n < 0 || (size_t)n >= len) ? -1 : n;
}

enum vsk_name_kind vsk_name_lookup(const struct vsk_rules *rs, const char *name, uint32_t *cid,
				   int *rule)
{
	enum vsk_name_kind kind = vsk_parse_name(name, cid);
	int r = -1;

	if (kind == VSK_NAME_NOT_OURS && name && rs && rs->n &&
	    (r = vsk_rules_match_name(rs, name)) >= 0) {
		*cid = rs->rule[r].cid;
		kind = VSK_NAME_CID;
	}
	if (rule)
		*rule = r;
	return kind;
}
