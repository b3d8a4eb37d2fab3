/* Routing decisions: where a connect or bind address leads, and which
 * address a socket shows the app afterwards.  The library's hooks and
 * anything that answers for them from outside decide with these alone. */
#include <string.h>

#include "core.h"

enum vsk_route vsk_route_fake(const struct vsk_fake_net *net, const struct sockaddr *sa,
			      socklen_t len, struct vsk_target *t, int *rule)
{
	*rule = -1;
	if (len > sizeof(struct sockaddr_storage))
		return VSK_ROUTE_NOT_OURS;
	switch (vsk_decode_sockaddr(net, sa, len, t)) {
	case VSK_ADDR_OK:
		return VSK_ROUTE_VSOCK;
	case VSK_ADDR_INVALID:
		return VSK_ROUTE_INVALID;
	default:
		return VSK_ROUTE_NOT_OURS;
	}
}

enum vsk_route vsk_route_by_rule(const struct vsk_rules *rs, const struct sockaddr *sa,
				 socklen_t len, enum vsk_rule_kind kind, struct vsk_target *t,
				 int *rule)
{
	uint16_t port;

	*rule = -1;
	if (__builtin_expect(!rs->n && !rs->unreadable, 1) ||
	    len > sizeof(struct sockaddr_storage))
		return VSK_ROUTE_NOT_OURS;
	/* An incomplete table cannot say that no rule applies. */
	if (__builtin_expect(rs->unreadable != 0, 0))
		return VSK_ROUTE_UNKNOWN;
	if ((*rule = vsk_rules_match_addr(rs, kind, sa, len)) < 0)
		return VSK_ROUTE_NOT_OURS;
	/* sin_port and sin6_port share their offset. */
	port = ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
	vsk_rule_target(&rs->rule[*rule], port, &t->cid, &t->port);
	return VSK_ROUTE_VSOCK;
}

enum vsk_route vsk_route(const struct vsk_fake_net *net, const struct vsk_rules *rs,
			 const struct sockaddr *sa, socklen_t len, enum vsk_rule_kind kind,
			 struct vsk_target *t, int *rule)
{
	enum vsk_route r = vsk_route_fake(net, sa, len, t, rule);

	return r != VSK_ROUTE_NOT_OURS ? r : vsk_route_by_rule(rs, sa, len, kind, t, rule);
}

uint8_t vsk_keep_app_addr(const struct sockaddr *sa, unsigned char out[VSK_SHOWN_MAX])
{
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in in;
		memcpy(&in, sa, sizeof(in));
		memset(in.sin_zero, 0, sizeof(in.sin_zero));
		memcpy(out, &in, sizeof(in));
		return sizeof(in);
	}
	struct sockaddr_in6 in6;
	memcpy(&in6, sa, sizeof(in6));
	in6.sin6_flowinfo = 0;
	memcpy(out, &in6, sizeof(in6));
	return sizeof(in6);
}

uint32_t vsk_shown_local_cid(uint32_t peer_cid, uint32_t (*this_cid)(void))
{
	return peer_cid == VSK_CID_LOCAL ? VSK_CID_LOCAL : this_cid();
}

socklen_t vsk_shown_addr(const struct vsk_fake_net *net, enum vsk_app_family fam,
			 const struct sockaddr_vm *vm, bool peer, const void *kept,
			 socklen_t kept_len, uint32_t local_cid, struct sockaddr_storage *out)
{
	if (kept_len) {
		struct sockaddr_in *in = (struct sockaddr_in *)(void *)out;
		memcpy(out, kept, kept_len);
		/* A listener on port 0 shows the port vsock picked. */
		if (!peer && in->sin_port == 0 && vm->svm_family == AF_VSOCK) /* sin6_port too */
			in->sin_port = htons(vsk_fold_port(vm->svm_port));
		return kept_len;
	}
	return vsk_encode_sockaddr(net, fam,
				   !peer && vm->svm_cid == VSK_CID_ANY ? local_cid : vm->svm_cid,
				   vm->svm_port, out);
}

uint64_t vsk_mark_encode(unsigned family_byte, int rule)
{
	uint64_t index = rule >= 0 ? (uint64_t)rule + 1 : 0;

	return VSK_MARK_MAGIC | (index & 0xffffff) << 8 | (family_byte & 0xff);
}

enum vsk_app_family vsk_mark_decode(uint64_t mark, int *rule, bool *early)
{
	*rule = -1;
	if (early)
		*early = false;
	if ((mark & VSK_MARK_MASK) != VSK_MARK_MAGIC)
		return 0;
	*rule = (int)((mark >> 8) & 0xffffff) - 1;
	if (early)
		*early = (mark & VSK_MARK_EARLY) != 0;
	switch (mark & 0xff & ~(VSK_MARK_EARLY | VSK_MARK_SHUT | VSK_MARK_UNANSWERED)) {
	case VSK_APP_INET4: return VSK_APP_INET4;
	case VSK_APP_INET6: return VSK_APP_INET6;
	case VSK_APP_MAPPED: return VSK_APP_MAPPED;
	default: *rule = -1; return 0;
	}
}

socklen_t vsk_rule_shown_side(const struct vsk_rules *rs, int rule, enum vsk_app_family fam,
			      const struct sockaddr_vm *side, bool *peer,
			      struct sockaddr_storage *out)
{
	const struct vsk_rule *r;
	uint16_t port;

	if (!rs || rule < 0 || (uint32_t)rule >= rs->n)
		return 0;
	r = &rs->rule[rule];
	if (r->kind != VSK_RULE_CONNECT && r->kind != VSK_RULE_LISTEN)
		return 0;
	*peer = r->kind == VSK_RULE_CONNECT;
	if (!r->any_port)
		port = r->port;
	else if (side && side->svm_family == AF_VSOCK && !r->vport)
		port = vsk_fold_port(side->svm_port);
	else
		port = 0;
	return vsk_rule_shown_addr(r, fam, port, out);
}
