/* Errno translation and configuration parsing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
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

/* Only where the rules are: copies, since the app may change its
 * environment before the first lookup. */
static void note_rule_sources(struct vsk_config *cfg, vsk_getenv_fn get)
{
	const char *path = get("VSOCKIFY_CONFIG"), *list = get("VSOCKIFY_RULES");

	if (path && *path) {
		if (strlen(path) < sizeof(cfg->rules_file))
			strcpy(cfg->rules_file, path);
		else /* a name that can't be kept must not fall back to /etc */
			note_problem(cfg, "VSOCKIFY_CONFIG", path, "path too long; no rules read");
	}
	if (list && *list && !(cfg->rules_list = strdup(list)))
		note_problem(cfg, "VSOCKIFY_RULES", list, "out of memory");
}

bool vsk_config_may_have_rules(const struct vsk_config *cfg)
{
	return cfg->rules_file[0] || cfg->rules_list || access(VSK_SYSTEM_CONFIG, F_OK) == 0;
}

int vsk_config_read_rules(const struct vsk_config *cfg, struct vsk_rules *rs,
			  vsk_rules_report_fn report, void *ctx)
{
	const char *list = cfg->rules_list;
	int problems;

	if (cfg->rules_file[0])
		problems = vsk_rules_add_file(rs, cfg->rules_file, false, report, ctx);
	else
		problems = vsk_rules_add_file(rs, VSK_SYSTEM_CONFIG, true, report, ctx);
	if (list)
		problems += vsk_rules_add(rs, VSK_SRC_LIST, "VSOCKIFY_RULES", list, strlen(list),
					  report, ctx);
	return problems;
}

void vsk_config_free(struct vsk_config *cfg)
{
	free(cfg->rules_list);
	cfg->rules_list = NULL;
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
	/* Opt-in: an early socket is vsock in the kernel, so a process
	 * without our hooks that gets it (SCM_RIGHTS, an exec without the
	 * shim) can never use it as TCP (docs/design.md). */
	cfg->early_sockets = false;
	if ((v = get("VSOCKIFY_EARLY_SOCKETS")) && *v) {
		if (!strcmp(v, "1") || !strcmp(v, "on") || !strcmp(v, "yes"))
			cfg->early_sockets = true;
		else if (strcmp(v, "0") && strcmp(v, "off") && strcmp(v, "no"))
			note_problem(cfg, "VSOCKIFY_EARLY_SOCKETS", v, "expected on or off");
	}
	if ((v = get("VSOCKIFY_WRAPPER")) && *v == '/' && strlen(v) < sizeof(cfg->wrapper))
		strcpy(cfg->wrapper, v);
	note_rule_sources(cfg, get);
}
