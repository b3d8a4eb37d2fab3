/* vsockify: run a command with libvsockify.so preloaded. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sys/socket.h> /* before linux/vm_sockets.h: older kernel headers need it */
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "supervisor.h"

#ifndef VSK_VERSION
#define VSK_VERSION "dev"
#endif
#ifndef VSK_LIBDIR
#define VSK_LIBDIR "/usr/local/lib/vsockify"
#endif
#define LIBNAME "libvsockify.so"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: vsockify [-d] [--supervise|--preload] [-c FILE] [-r RULE]... [--hybrid CID=PATH]...\n"
		"                [--] COMMAND [ARGS...]\n"
		"       vsockify --check [-c FILE] [-r RULE]... [--hybrid CID=PATH]... [COMMAND]\n"
		"       vsockify --cid | --help | --version\n"
		"\n"
		"Run COMMAND so that TCP connections and listeners on vsock names\n"
		"use AF_VSOCK instead:\n"
		"  vsock-<CID>.local   a CID (0..4294967294)\n"
		"  vsock-host.local    CID 2      vsock-local.local       CID 1\n"
		"  vsock-hypervisor.local CID 0   vsock-any.local         any CID (bind)\n"
		"\n"
		"  -d, --debug        log every translation (VSOCKIFY_LOG=debug)\n"
		"  -c, --config FILE  read rules from FILE (VSOCKIFY_CONFIG)\n"
		"  -r, --rule RULE    add a rule (appended to VSOCKIFY_RULES), e.g.\n"
		"                     'connect 10.0.2.2:5432 vsock:2', 'listen *:8080 vsock:any',\n"
		"                     'name db.internal vsock:2'\n"
		"      --hybrid CID=PATH  reach CID through a Firecracker or Cloud\n"
		"                     Hypervisor vsock socket (rule: hybrid CID PATH)\n"
		"      --supervise    run COMMAND under the seccomp supervisor (the default for\n"
		"                     static and Go programs, which bypass libc)\n"
		"      --preload      use only the preload library\n"
		"      --check        check every rule source and print the rule table; with\n"
		"                     COMMAND, say which way in it would get and why\n"
		"      --cid          print this machine's local vsock CID\n"
		"  -h, --help    show this help\n"
		"      --version show the version\n"
		"\n"
		"Environment: VSOCKIFY_LOG=off|error|warn|info|debug, VSOCKIFY_LOG_FILE,\n"
		"VSOCKIFY_FAKE_NET4, VSOCKIFY_FAKE_NET6, VSOCKIFY_CONFIG (default\n"
		"/etc/vsockify.conf), VSOCKIFY_RULES, VSOCKIFY_EARLY_SOCKETS=on|off.\n"
		"See vsockify(1), vsockify.conf(5).\n");
}

static int print_local_cid(void)
{
	unsigned int cid;
	int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) != 0) {
		fprintf(stderr, "vsockify: cannot read the local CID from /dev/vsock: %s\n",
			strerror(errno));
		return 1;
	}
	close(fd);
	printf("%u\n", cid);
	return 0;
}

/* The C library this wrapper, and the library beside it, are built for.
 * A glibc build also carries a musl library in the subdirectory musl/
 * (make musl; make install puts it in $(LIBDIR)/musl/). */
#ifdef __GLIBC__
#define SELF_LIBC VSK_LIBC_GLIBC
#else
#define SELF_LIBC VSK_LIBC_MUSL
#endif

/* The library's name below a libdir for a program of that libc. */
static const char *lib_subpath(enum vsk_libc libc)
{
	return libc == VSK_LIBC_MUSL && SELF_LIBC != VSK_LIBC_MUSL ? "musl/" LIBNAME : LIBNAME;
}

/* Next to this binary (a build tree), else the installed private libdir,
 * the one for a program of that libc.  0, or -1 with errno (and out naming
 * the first candidate that exists). */
static int find_library(enum vsk_libc libc, char *out, size_t len)
{
	char self[PATH_MAX], first[PATH_MAX + 32] = "";
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int first_err = ENOENT;
	const char *sub = lib_subpath(libc);

	if (n > 0) {
		self[n] = '\0';
		snprintf(out, len, "%s/%s", dirname(self), sub);
		if (access(out, R_OK) == 0)
			return 0;
		first_err = errno;
		snprintf(first, sizeof(first), "%s", out);
	}
	snprintf(out, len, "%s/%s", VSK_LIBDIR, sub);
	if (access(out, R_OK) == 0)
		return 0;
	if (errno == ENOENT && first_err != ENOENT) {
		snprintf(out, len, "%s", first);
		errno = first_err;
	}
	return -1;
}

/* Which library a program of that libc gets, in a few words. */
static const char *lib_reason(enum vsk_libc libc)
{
	if (libc == VSK_LIBC_MUSL)
		return SELF_LIBC == VSK_LIBC_MUSL ? "a musl program; this build is musl's"
						  : "a musl program (interpreter ld-musl-*)";
	if (libc == VSK_LIBC_GLIBC)
		return SELF_LIBC == VSK_LIBC_GLIBC ? "a glibc program"
						   : "a glibc program; this build is musl's";
	return "libc not known from the interpreter: this build's";
}

/* lib in front of LD_PRELOAD.  other, the library built for the other
 * libc, is taken out of it (a glibc program under vsockify that runs a musl
 * one hands it back here): it cannot load into this program. */
static int set_preload(const char *lib, const char *other)
{
	const char *old = getenv("LD_PRELOAD");
	char *value, *kept, *tok, *save = NULL;
	size_t n;
	int rc;

	if (!old || !*old)
		return setenv("LD_PRELOAD", lib, 1);
	if (!other || !strstr(old, other)) {
		if (strstr(old, lib))
			return 0;
		if (asprintf(&value, "%s %s", lib, old) < 0)
			return -1;
		rc = setenv("LD_PRELOAD", value, 1);
		free(value);
		return rc;
	}
	n = strlen(old);
	if (!(kept = malloc(n + 1)) || !(value = malloc(strlen(lib) + n + 2))) {
		free(kept);
		return -1;
	}
	strcpy(kept, old);
	strcpy(value, lib);
	for (tok = strtok_r(kept, " :", &save); tok; tok = strtok_r(NULL, " :", &save)) {
		if (!strcmp(tok, lib) || (other && !strcmp(tok, other)))
			continue;
		strcat(value, " ");
		strcat(value, tok);
	}
	rc = setenv("LD_PRELOAD", value, 1);
	free(kept);
	free(value);
	return rc;
}

static void print_problem(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "vsockify: %s\n", msg);
}

struct options {
	const char *config;  /* -c */
	char *rules;         /* every -r and --hybrid, joined by ';' */
	size_t rules_len;
	/* Each of them on its own, to check and number them as given. */
	struct rule_arg {
		char label[32];
		size_t off, len;
	} *args;
	int nargs;
	bool check;
	const char *argv0; /* --argv0: the program's argv[0], if not its name */
	int way; /* WAY_AUTO, or what --preload/--supervise forced */
};

/* Which way in a program needs (docs/supervisor.md, "Choosing"). */
enum { WAY_AUTO, WAY_PRELOAD, WAY_SUPERVISE, WAY_BOTH };

static const char *way_name(int way)
{
	switch (way) {
	case WAY_SUPERVISE: return "the supervisor";
	case WAY_BOTH: return "the preload library and the supervisor";
	default: return "the preload library";
	}
}

static long read_at(void *ctx, uint64_t off, void *buf, size_t len)
{
	return pread(*(int *)ctx, buf, len, (off_t)off);
}

/* The way for the program at path, and why, in a few words. */
static int choose_way(const struct options *o, const char *path, char *why, size_t len,
		      enum vsk_libc *libc)
{
	struct vsk_prog_info info = { 0 };
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;

	if (fd >= 0 && fstat(fd, &st) == 0)
		rc = vsk_classify_elf(read_at, &fd, (uint64_t)st.st_size, &info);
	if (fd >= 0)
		close(fd);
	*libc = rc == 0 && info.kind == VSK_PROG_DYNAMIC && !info.foreign_arch
			? vsk_interp_libc(info.interp) : VSK_LIBC_UNKNOWN;
	if (rc != 0 || info.kind == VSK_PROG_UNKNOWN) {
		snprintf(why, len, "%s", fd < 0 ? "unreadable: the loader decides" :
						  "not an ELF program (a script?): its interpreter is");
		return o->way == WAY_SUPERVISE ? WAY_BOTH : WAY_PRELOAD;
	}
	if (info.foreign_arch) {
		snprintf(why, len, "built for another architecture: neither way in translates it");
		return WAY_PRELOAD;
	}
	bool dynamic = info.kind == VSK_PROG_DYNAMIC;
	if (o->way == WAY_PRELOAD) {
		snprintf(why, len, "--preload%s", dynamic ? "" : "; a static program ignores it");
		return WAY_PRELOAD;
	}
	if (o->way == WAY_SUPERVISE) {
		snprintf(why, len, "--supervise%s", dynamic ? "; the library too, for its names" : "");
		return dynamic ? WAY_BOTH : WAY_SUPERVISE;
	}
	if (dynamic && info.go) {
		snprintf(why, len, "a dynamically linked Go program: libc resolves, Go's own "
				   "system calls connect");
		return WAY_BOTH;
	}
	if (dynamic) {
		snprintf(why, len, "dynamically linked (%.100s)", info.interp);
		return WAY_PRELOAD;
	}
	snprintf(why, len, "%s", info.go ? "a static Go program" : "statically linked");
	return WAY_SUPERVISE;
}

/* option: "--rule" or "--hybrid", numbered among its kind for messages. */
static int add_rule_arg(struct options *o, const char *option, const char *rule)
{
	size_t n = strlen(rule);
	char *grown = realloc(o->rules, o->rules_len + n + 2);
	struct rule_arg *args = realloc(o->args, (size_t)(o->nargs + 1) * sizeof(*args));
	int same = 0;

	if (grown)
		o->rules = grown;
	if (args)
		o->args = args;
	if (!grown || !args)
		return -1;
	for (int i = 0; i < o->nargs; i++)
		same += strncmp(o->args[i].label, option, strlen(option)) == 0;
	if (o->rules_len)
		o->rules[o->rules_len++] = ';';
	snprintf(args[o->nargs].label, sizeof(args[o->nargs].label), "%s %d", option, same + 1);
	args[o->nargs].off = o->rules_len;
	args[o->nargs++].len = n;
	memcpy(o->rules + o->rules_len, rule, n + 1);
	o->rules_len += n;
	return 0;
}

/* Each -r is one rule: a ';' or newline in it would make it several once
 * joined into VSOCKIFY_RULES. */
static int check_rule_args(const struct options *o, struct vsk_rules *rs)
{
	int problems = 0;

	for (int i = 0; i < o->nargs; i++) {
		const char *text = o->rules + o->args[i].off;
		size_t n = o->args[i].len;
		if (memchr(text, ';', n) || memchr(text, '\n', n)) {
			fprintf(stderr, "vsockify: %s: one rule per option (it holds a ';' or a "
				"newline)\n", o->args[i].label);
			problems++;
			continue;
		}
		problems += vsk_rules_add(rs, VSK_SRC_ARGS, o->args[i].label, text, n,
					  print_problem, NULL);
	}
	return problems;
}

/* --hybrid CID=PATH is the rule "hybrid CID PATH", with PATH made absolute
 * here (Firecracker's own examples use relative ones). */
static int add_hybrid_arg(struct options *o, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char cwd[PATH_MAX], *rule;
	int rc;

	if (!eq || eq == arg || !eq[1]) {
		fprintf(stderr, "vsockify: --hybrid expects CID=PATH, got '%s'\n", arg);
		return -1;
	}
	if (eq[1] != '/' && !getcwd(cwd, sizeof(cwd))) {
		fprintf(stderr, "vsockify: --hybrid: cannot read the current directory: %s\n",
			strerror(errno));
		return -1;
	}
	rc = eq[1] == '/' ? asprintf(&rule, "hybrid %.*s %s", (int)(eq - arg), arg, eq + 1)
			  : asprintf(&rule, "hybrid %.*s %s/%s", (int)(eq - arg), arg, cwd, eq + 1);
	if (rc < 0 || add_rule_arg(o, "--hybrid", rule) != 0) {
		fprintf(stderr, "vsockify: out of memory\n");
		return -1;
	}
	free(rule);
	return 0;
}

/* Every source the library will read, in its order, checked now so that a
 * mistake stops here instead of half-applying in the command.  Returns the
 * number of problems; prints the table when o->check. */
static int check_rules(const struct options *o)
{
	struct vsk_rules rs = { 0 };
	const char *env_file = getenv("VSOCKIFY_CONFIG");
	const char *env_rules = getenv("VSOCKIFY_RULES");
	const char *file = o->config ? o->config : env_file;
	char line[VSK_RULE_TEXT_MAX];
	int problems = 0;

	if (file && *file)
		problems += vsk_rules_add_file(&rs, file, false, print_problem, NULL);
	else
		problems += vsk_rules_add_file(&rs, VSK_SYSTEM_CONFIG, true, print_problem, NULL);
	if (env_rules && *env_rules)
		problems += vsk_rules_add(&rs, VSK_SRC_LIST, "VSOCKIFY_RULES", env_rules,
					  strlen(env_rules), print_problem, NULL);
	problems += check_rule_args(o, &rs);
	if (o->check && !problems)
		for (uint32_t i = 0; i < rs.n; i++)
			if (vsk_rule_format(&rs, i, line, sizeof(line)) > 0)
				puts(line);
	vsk_rules_free(&rs);
	return problems;
}

/* Hand the checked rules to the library through its own variables. */
static int pass_rules(const struct options *o)
{
	const char *env_rules = getenv("VSOCKIFY_RULES");
	char path[PATH_MAX], *joined;
	int rc;

	if (o->config) {
		/* Absolute, so children that chdir still find it. */
		if (!realpath(o->config, path) || setenv("VSOCKIFY_CONFIG", path, 1) != 0)
			return -1;
	}
	if (!o->rules_len)
		return 0;
	if (!env_rules || !*env_rules)
		return setenv("VSOCKIFY_RULES", o->rules, 1);
	if (asprintf(&joined, "%s;%s", env_rules, o->rules) < 0)
		return -1;
	rc = setenv("VSOCKIFY_RULES", joined, 1);
	free(joined);
	return rc;
}

/* The library hands exec'd static and Go programs back to this program. */
static int set_wrapper_variable(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return 0; /* no /proc: no hand-off, nothing else changes */
	self[n] = '\0';
	return setenv("VSOCKIFY_WRAPPER", self, 1);
}

static const char *env_value(const char *name)
{
	return getenv(name);
}

/* What execvp would run: name itself when it holds a '/', else the
 * first executable file of that name on PATH.  0, or -1 with errno. */
static int find_program(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");
	int err = ENOENT;

	if (strchr(name, '/')) {
		snprintf(out, len, "%s", name);
		return access(out, X_OK) == 0 ? 0 : -1;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		if (snprintf(out, len, "%.*s%s%s", (int)(end - p), p, end == p ? "" : "/", name) <
			    (int)len &&
		    access(out, X_OK) == 0) {
			struct stat st;
			if (stat(out, &st) == 0 && S_ISREG(st.st_mode))
				return 0;
		} else if (errno == EACCES) {
			err = EACCES;
		}
		if (!*end)
			break;
		p = end;
	}
	errno = err;
	return -1;
}

/* "-x VALUE", "--long VALUE" or "--long=VALUE".  NULL if a is not it. */
static const char *option_value(int argc, char **argv, int *i, const char *shortopt,
				const char *longopt, bool *missing)
{
	const char *a = argv[*i];
	size_t ln = strlen(longopt);

	*missing = false;
	if (!strncmp(a, longopt, ln) && a[ln] == '=')
		return a + ln + 1;
	if (strcmp(a, shortopt) != 0 && strcmp(a, longopt) != 0)
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

int main(int argc, char **argv)
{
	char lib[PATH_MAX + 32];
	struct options o = { 0 };
	int i = 1;
	const char *saved = getenv("VSOCKIFY_SAVED_PRELOAD");

	/* Started by the library for an exec'd static or Go program: the
	 * LD_PRELOAD it kept aside is the program's (hooks_exec.c). */
	if (saved) {
		if (*saved)
			setenv("LD_PRELOAD", saved, 1);
		else
			unsetenv("LD_PRELOAD");
		unsetenv("VSOCKIFY_SAVED_PRELOAD");
	}

	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i], *v;
		bool missing;
		if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (!strcmp(a, "-d") || !strcmp(a, "--debug")) {
			setenv("VSOCKIFY_LOG", "debug", 1);
		} else if ((v = option_value(argc, argv, &i, "-c", "--config", &missing))) {
			if (o.config) {
				fprintf(stderr, "vsockify: only one -c/--config FILE\n");
				return 2;
			}
			o.config = v;
		} else if ((v = option_value(argc, argv, &i, "-r", "--rule", &missing))) {
			if (add_rule_arg(&o, "--rule", v) != 0) {
				fprintf(stderr, "vsockify: out of memory\n");
				return 2;
			}
		} else if ((v = option_value(argc, argv, &i, "--hybrid", "--hybrid", &missing))) {
			if (add_hybrid_arg(&o, v) != 0)
				return 2;
		} else if (missing) {
			fprintf(stderr, "vsockify: option '%s' needs a value\n", a);
			return 2;
		} else if ((v = option_value(argc, argv, &i, "--argv0", "--argv0", &missing))) {
			o.argv0 = v;
		} else if (!strcmp(a, "--supervise")) {
			o.way = WAY_SUPERVISE;
		} else if (!strcmp(a, "--preload")) {
			o.way = WAY_PRELOAD;
		} else if (!strcmp(a, "--check")) {
			o.check = true;
		} else if (!strcmp(a, "--cid")) {
			return print_local_cid();
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--version")) {
			printf("vsockify %s\n", VSK_VERSION);
			return 0;
		} else {
			fprintf(stderr, "vsockify: unknown option '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (o.check) {
		int problems = check_rules(&o);
		if (i < argc) {
			char path[PATH_MAX], why[160];
			if (find_program(argv[i], path, sizeof(path)) != 0) {
				fprintf(stderr, "vsockify: %s: %s\n", argv[i], strerror(errno));
				return 2;
			}
			enum vsk_libc libc;
			int way = choose_way(&o, path, why, sizeof(why), &libc);
			printf("%s: %s (%s)\n", path, way_name(way), why);
			if (way != WAY_SUPERVISE) {
				int found = find_library(libc, lib, sizeof(lib));
				printf("%s: library %s (%s%s)\n", path, lib, lib_reason(libc),
				       found ? "; not found" : "");
			}
		}
		return problems ? 2 : 0;
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (check_rules(&o)) {
		fprintf(stderr, "vsockify: not running %s: fix the rules above\n", argv[i]);
		return 2;
	}
	if (pass_rules(&o) != 0) {
		fprintf(stderr, "vsockify: cannot pass the rules on: %s\n", strerror(errno));
		return 2;
	}
	free(o.rules);
	free(o.args);
	char path[PATH_MAX], why[160], other[PATH_MAX + 32];
	enum vsk_libc libc = VSK_LIBC_UNKNOWN;
	int way = WAY_PRELOAD;
	if (find_program(argv[i], path, sizeof(path)) == 0)
		way = choose_way(&o, path, why, sizeof(why), &libc);
	else
		snprintf(why, sizeof(why), "not found: execvp says why");
	/* The library built for the program's libc (a musl program gets the
	 * musl build); the other one is taken out of LD_PRELOAD. */
	bool foreign_libc = lib_subpath(libc) != lib_subpath(SELF_LIBC);
	if (find_library(libc, lib, sizeof(lib)) != 0) {
		/* Say which: a library that is there but unreadable (a user
		 * other than its owner, a private home) is not "missing". */
		if (errno == ENOENT)
			fprintf(stderr, "vsockify: cannot find %s next to this program or in %s%s\n",
				lib_subpath(libc), VSK_LIBDIR,
				foreign_libc ? " (it is a musl program: build with make musl)" : "");
		else
			fprintf(stderr, "vsockify: cannot read %s: %s\n", lib, strerror(errno));
		return 127;
	}
	if (find_library(foreign_libc ? SELF_LIBC : VSK_LIBC_MUSL, other, sizeof(other)) != 0 ||
	    !strcmp(other, lib))
		other[0] = '\0';
	if (getenv("VSOCKIFY_LOG") && !strcmp(getenv("VSOCKIFY_LOG"), "debug")) {
		/* Where the library's log lines go, as they do. */
		const char *lf = getenv("VSOCKIFY_LOG_FILE");
		FILE *log = lf && *lf ? fopen(lf, "ae") : NULL;
		fprintf(log ? log : stderr, "vsockify[%ld]: %s: %s (%s)\n", (long)getpid(),
			argv[i], way_name(way), why);
		if (way != WAY_SUPERVISE)
			fprintf(log ? log : stderr, "vsockify[%ld]: %s: library %s (%s)\n",
				(long)getpid(), argv[i], lib, lib_reason(libc));
		if (log)
			fclose(log);
	}
	if (set_wrapper_variable() != 0) {
		fprintf(stderr, "vsockify: cannot set VSOCKIFY_WRAPPER: %s\n", strerror(errno));
		return 127;
	}
	if (o.argv0 && way != WAY_PRELOAD)
		argv[i] = (char *)o.argv0;
	if (way != WAY_PRELOAD) {
		struct vsk_config cfg;
		vsk_config_load(&cfg, env_value);
		struct vsk_super_opts so = { .cfg = &cfg,
					     .preload = way == WAY_BOTH ? lib : NULL,
					     .path = path, .argv = argv + i };
		return vsk_supervise(&so);
	}
	if (set_preload(lib, other[0] ? other : NULL) != 0) {
		fprintf(stderr, "vsockify: cannot set LD_PRELOAD: %s\n", strerror(errno));
		return 127;
	}
	if (o.argv0) {
		argv[i] = (char *)o.argv0;
		execv(path, argv + i);
	} else {
		execvp(argv[i], argv + i);
	}
	fprintf(stderr, "vsockify: %s: %s\n", argv[i], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
