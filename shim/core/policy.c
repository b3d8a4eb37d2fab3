/* Errno translation and configuration parsing. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core.h"

int vsk_map_connect_errno(int err)
{
	switch (err) {
	case ECONNRESET: /* vsock's answer to a closed port */
		return ECONNREFUSED;
	case ENODEV: /* no such CID, or no transport reaches it */
	case EHOSTDOWN:
		return EHOSTUNREACH;
	case EAFNOSUPPORT: /* AF_VSOCK missing from this kernel */
	case ENETDOWN:
		return ENETUNREACH;
	default:
		return err;
	}
}

int vsk_parse_log_level(const char *s, enum vsk_log_level *out)
{
	static const struct {
		const char *name;
		enum vsk_log_level level;
	} levels[] = {
		{ "off", VSK_LOG_OFF },   { "none", VSK_LOG_OFF },
		{ "error", VSK_LOG_ERROR }, { "warn", VSK_LOG_WARN },
		{ "warning", VSK_LOG_WARN }, { "info", VSK_LOG_INFO },
		{ "debug", VSK_LOG_DEBUG },
	};

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		if (strcasecmp(s, levels[i].name) == 0) {
			*out = levels[i].level;
			return 0;
		}
	}
	return -1;
}

static void note_problem(struct vsk_config *cfg, const char *var,
			 const char *value, const char *why)
{
	if (cfg->n_problems >= VSK_CONFIG_PROBLEMS)
		return;
	snprintf(cfg->problems[cfg->n_problems++], VSK_CONFIG_PROBLEM_LEN,
		 "ignoring %s=\"%.60s\": %s", var, value, why);
}

static void note_rule_problem(void *ctx, const char *msg)
{
	struct vsk_config *cfg = ctx;

	if (cfg->n_rule_problems < VSK_CONFIG_PROBLEMS)
		snprintf(cfg->rule_problems[cfg->n_rule_problems], VSK_CONFIG_PROBLEM_LEN,
			 "%s", msg);
	cfg->n_rule_problems++;
}

/* The sources of rules, in their documented order; a bad one is dropped
 * whole (vsk_rules_add), and the rest still apply. */
static void load_rules(struct vsk_config *cfg, vsk_getenv_fn get)
{
	const char *path = get("VSOCKIFY_CONFIG"), *list = get("VSOCKIFY_RULES");

	if (path && *path)
		vsk_rules_add_file(&cfg->rules, path, false, note_rule_problem, cfg);
	else
		vsk_rules_add_file(&cfg->rules, VSK_SYSTEM_CONFIG, true, note_rule_problem, cfg);
	if (list && *list)
		vsk_rules_add(&cfg->rules, VSK_SRC_LIST, "VSOCKIFY_RULES", list, strlen(list),
			      note_rule_problem, cfg);
}

void vsk_config_load(struct vsk_config *cfg, vsk_getenv_fn get)
{
	const char *v;

	memset(cfg, 0, sizeof(*cfg));
	cfg->log_level = VSK_LOG_ERROR;
	vsk_fake_net_default(&cfg->net);

	if ((v = get("VSOCKIFY_LOG")) && *v &&
	    vsk_parse_log_level(v, &cfg->log_level) != 0)
		note_problem(cfg, "VSOCKIFY_LOG", v,
			     "expected off, error, warn, info or debug");
	if ((v = get("VSOCKIFY_LOG_FILE")) && *v) {
		if (strlen(v) < sizeof(cfg->log_file))
			strcpy(cfg->log_file, v);
		else
			note_problem(cfg, "VSOCKIFY_LOG_FILE", v, "path too long");
	}
	if ((v = get("VSOCKIFY_FAKE_NET4")) && *v &&
	    vsk_fake_net_set4(&cfg->net, v) != 0)
		note_problem(cfg, "VSOCKIFY_FAKE_NET4", v,
			     "expected an IPv4 network a.b.c.d/8..24 with zero host bits, "
			     "outside 0/8, 127.0.0.0/16 and 224/3");
	if ((v = get("VSOCKIFY_FAKE_NET6")) && *v &&
	    vsk_fake_net_set6(&cfg->net, v) != 0)
		note_problem(cfg, "VSOCKIFY_FAKE_NET6", v,
			     "expected an IPv6 network x::/16..96 with zero host bits, "
			     "outside ::/16, fe80::/10 and ff00::/8");
	load_rules(cfg, get);
}
