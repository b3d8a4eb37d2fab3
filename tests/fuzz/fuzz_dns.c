/* vsk_dns_respond / vsk_dns_servfail: the supervisor's DNS answers.
 * Input: one DNS packet, as a program would send it to its nameserver.
 * The reply buffer is exactly cap bytes (chosen from the last input byte)
 * on the heap, so ASan sees any overrun. */
#include "core/core.h"
#include "fuzz.h"

static struct vsk_rules rules;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char text[] = "name db.internal vsock:7; name *.vm vsock:4294967290";

	(void)argc;
	(void)argv;
	fuzz_forbid_sockets();
	FUZZ_CHECK(vsk_rules_add(&rules, VSK_SRC_LIST, "fuzz", text, sizeof(text) - 1, NULL,
				 NULL) == 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vsk_fake_net net;
	size_t cap = size ? (size_t)data[size - 1] * 4 + 1 : 1, outlen = 7, again = 0;
	uint8_t *q = malloc(size ? size : 1), *out = malloc(cap), *out2 = malloc(cap);
	enum vsk_dns_verdict v;

	if (!q || !out || !out2)
		abort();
	memcpy(q, data, size);
	vsk_fake_net_default(&net);
	v = vsk_dns_respond(&net, &rules, q, size, out, cap, &outlen);
	FUZZ_CHECK(v == VSK_DNS_FORWARD || v == VSK_DNS_ANSWER || v == VSK_DNS_DROP);
	FUZZ_CHECK(memcmp(q, data, size) == 0); /* the query is never changed */
	if (size < 12)
		FUZZ_CHECK(v == VSK_DNS_DROP);
	if (v != VSK_DNS_ANSWER) {
		FUZZ_CHECK(outlen == 0);
	} else {
		/* A reply to this query: its ID, QR set, one question copied. */
		FUZZ_CHECK(outlen >= 12 && outlen <= cap);
		FUZZ_CHECK(out[0] == q[0] && out[1] == q[1] && (out[2] & 0x80));
		FUZZ_CHECK(out[4] == 0 && out[5] == 1);
		FUZZ_CHECK(out[6] == 0 && out[7] <= 1);
		/* The same input gives the same reply. */
		FUZZ_CHECK(vsk_dns_respond(&net, &rules, q, size, out2, cap, &again) == v &&
			   again == outlen && memcmp(out, out2, outlen) == 0);
		/* A reply is not a query: fed back, it is never answered. */
		FUZZ_CHECK(vsk_dns_respond(&net, &rules, out, outlen, out2, cap, &again) !=
			   VSK_DNS_ANSWER);
		/* Without the rules, a name they made ours is forwarded; the
		 * built-in names are answered alike. */
		v = vsk_dns_respond(&net, NULL, q, size, out2, cap, &again);
		FUZZ_CHECK(v != VSK_DNS_DROP);
	}
	if (vsk_dns_servfail(q, size, out, cap, &outlen) == 0)
		FUZZ_CHECK(outlen >= 12 && outlen <= cap && out[0] == q[0] && out[1] == q[1] &&
			   (out[3] & 15) == 2);
	free(q);
	free(out);
	free(out2);
	return 0;
}
