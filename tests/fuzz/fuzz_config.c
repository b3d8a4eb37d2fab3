/* vsk_config_load with a fake environment.
 * Input: the values of the variables below, in order, separated by '\n';
 * variables past the last field are unset. */
#include "core/core.h"
#include "fuzz.h"

enum { LOG, LOG_FILE, NET4, NET6, EARLY };
static const char *const vars[] = {
	[LOG] = "VSOCKIFY_LOG",
	[LOG_FILE] = "VSOCKIFY_LOG_FILE",
	[NET4] = "VSOCKIFY_FAKE_NET4",
	[NET6] = "VSOCKIFY_FAKE_NET6",
	[EARLY] = "VSOCKIFY_EARLY_SOCKETS",
};
#define N_VARS (sizeof(vars) / sizeof(vars[0]))

static char *values[N_VARS];

static const char *fake_getenv(const char *name)
{
	for (size_t i = 0; i < N_VARS; i++)
		if (strcmp(name, vars[i]) == 0)
			return values[i];
	return NULL;
}

/* Set and not empty: empty variables mean "default", like unset ones. */
static bool set(const char *v)
{
	return v && *v;
}

static bool is_str(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
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
	struct fuzz_in in = { data, size };
	struct vsk_config cfg;
	bool had_input = size > 0;

	for (size_t i = 0; i < N_VARS; i++) {
		values[i] = had_input ? fuzz_str(&in, '\n') : NULL;
		had_input = in.n > 0;
	}
	memset(&cfg, 0xa5, sizeof(cfg)); /* the loader must set every field */
	vsk_config_load(&cfg, fake_getenv);

	FUZZ_CHECK(cfg.log_level >= VSK_LOG_OFF && cfg.log_level <= VSK_LOG_DEBUG);
	FUZZ_CHECK(is_str(cfg.log_file, sizeof(cfg.log_file)));
	if (cfg.log_file[0])
		FUZZ_CHECK(set(values[LOG_FILE]) && strcmp(cfg.log_file, values[LOG_FILE]) == 0);
	else if (set(values[LOG_FILE]))
		FUZZ_CHECK(cfg.n_problems > 0);
	fuzz_check_net(&cfg.net);
	FUZZ_CHECK(cfg.n_problems >= 0 && cfg.n_problems <= VSK_CONFIG_PROBLEMS);
	for (int i = 0; i < cfg.n_problems; i++)
		FUZZ_CHECK(is_str(cfg.problems[i], VSK_CONFIG_PROBLEM_LEN) && cfg.problems[i][0]);

	/* Each value is taken as its own parser reads it, or it is reported
	 * and the default stays. */
	enum vsk_log_level level = VSK_LOG_ERROR;
	if (set(values[LOG]) && vsk_parse_log_level(values[LOG], &level) != 0)
		FUZZ_CHECK(cfg.n_problems > 0);
	FUZZ_CHECK(cfg.log_level == level);

	struct vsk_fake_net want;
	vsk_fake_net_default(&want);
	if (set(values[NET4]) && vsk_fake_net_set4(&want, values[NET4]) != 0)
		FUZZ_CHECK(cfg.n_problems > 0);
	if (set(values[NET6]) && vsk_fake_net_set6(&want, values[NET6]) != 0)
		FUZZ_CHECK(cfg.n_problems > 0);
	FUZZ_CHECK(cfg.net.base4 == want.base4 && cfg.net.prefix4 == want.prefix4);
	FUZZ_CHECK(cfg.net.prefix6 == want.prefix6 &&
		   !memcmp(&cfg.net.base6, &want.base6, sizeof(want.base6)));

	bool early = false, early_known = !set(values[EARLY]);
	static const char *const offs[] = { "0", "off", "no" }, *const ons[] = { "1", "on", "yes" };
	for (size_t i = 0; i < 3 && set(values[EARLY]); i++) {
		if (!strcmp(values[EARLY], offs[i]))
			early_known = true;
		if (!strcmp(values[EARLY], ons[i]))
			early = true, early_known = true;
	}
	if (!early_known)
		FUZZ_CHECK(cfg.n_problems > 0);
	FUZZ_CHECK(cfg.early_sockets == early);

	vsk_config_free(&cfg);
	for (size_t i = 0; i < N_VARS; i++) {
		free(values[i]);
		values[i] = NULL;
	}
	return 0;
}
