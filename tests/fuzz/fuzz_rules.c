/* The rule parser (vsk_rules_add) on arbitrary text, as a file and as a
 * ';'-list.  Checks: all or nothing; every message names its place; the
 * normalised form of each rule parses back to itself; each rule is found
 * by its own key, or an earlier rule that wins over it. */
#include <arpa/inet.h>

#include "core/core.h"
#include "fuzz.h"

static int messages;

static void check_message(void *ctx, const char *msg)
{
	const char *label = ctx;

	messages++;
	FUZZ_CHECK(strlen(msg) < VSK_RULE_MSG_MAX);
	FUZZ_CHECK(strncmp(msg, label, strlen(label)) == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_forbid_sockets();
	return 0;
}

static void check_table(const struct vsk_rules *rs)
{
	char text[VSK_RULE_TEXT_MAX], again[VSK_RULE_TEXT_MAX];

	for (uint32_t i = 0; i < rs->n; i++) {
		const struct vsk_rule *r = &rs->rule[i];
		struct vsk_rules one = { 0 };

		FUZZ_CHECK(vsk_rule_format(rs, i, text, sizeof(text)) > 0);
		FUZZ_CHECK(vsk_rules_add(&one, VSK_SRC_LIST, "re", text, strlen(text), NULL,
					 NULL) == 0 && one.n == 1);
		FUZZ_CHECK(vsk_rule_format(&one, 0, again, sizeof(again)) > 0);
		FUZZ_CHECK(strcmp(text, again) == 0);
		vsk_rules_free(&one);

		if (r->kind == VSK_RULE_HYBRID) {
			FUZZ_CHECK(vsk_rules_hybrid(rs, r->cid) == (int)i);
			FUZZ_CHECK(strlen(vsk_rule_path(rs, r)) == r->name_len);
		} else if (r->kind == VSK_RULE_NAME) {
			char name[260];
			snprintf(name, sizeof(name), "%s%.*s", r->wildcard ? "x." : "",
				 (int)r->name_len, rs->names + r->name_off);
			int m = vsk_rules_match_name(rs, name);
			FUZZ_CHECK(m >= 0 && (uint32_t)m <= i);
		} else if (!r->any_addr) {
			struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
			memcpy(&in6.sin6_addr, r->addr, 16);
			in6.sin6_port = htons(r->any_port ? 7 : r->port);
			int m = vsk_rules_match_addr(rs, r->kind, (struct sockaddr *)&in6,
						     sizeof(in6));
			FUZZ_CHECK(m >= 0 && (uint32_t)m <= i);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vsk_rules rs = { 0 };
	int problems;

	messages = 0;
	problems = vsk_rules_add(&rs, VSK_SRC_FILE, "in.conf", (const char *)data, size,
				 check_message, "in.conf:");
	FUZZ_CHECK(problems == messages);
	FUZZ_CHECK(problems == 0 || rs.n == 0);
	check_table(&rs);
	uint32_t from_file = rs.n;

	messages = 0;
	problems = vsk_rules_add(&rs, VSK_SRC_LIST, "VSOCKIFY_RULES", (const char *)data, size,
				 check_message, "VSOCKIFY_RULES: rule ");
	FUZZ_CHECK(problems == messages);
	FUZZ_CHECK(problems == 0 || rs.n == from_file);
	if (!memchr(data, ';', size)) {
		/* Without ';' a list is the file again: each of its rules
		 * repeats a match, or it fails as the file did. */
		FUZZ_CHECK(rs.n == from_file);
		FUZZ_CHECK(from_file ? problems == (int)from_file : true);
	}
	vsk_rules_free(&rs);
	return 0;
}
