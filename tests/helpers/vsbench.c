/* vsbench: the vsockify benchmark program (see tests/bench/run.sh and
 * docs/performance.md).
 *
 * Written against the ordinary TCP socket API (getaddrinfo + connect,
 * getaddrinfo(AI_PASSIVE) + bind + listen + accept).  With --raw-vsock the same
 * code uses AF_VSOCK directly (sockaddr_vm): --host is then a CID.
 *
 *   vsbench server   [--raw-vsock] [--host H] --port P [--hold]
 *   vsbench bulk     [--raw-vsock] [--host H] --port P [-n MiB]     (default 256)
 *   vsbench pingpong [--raw-vsock] [--host H] --port P [-n ROUNDS]  (default 20000)
 *   vsbench connrate [--raw-vsock] [--host H] --port P [-n CONNS]   (default 2000)
 *   vsbench connlat  [--raw-vsock] [--host H] --port P [-n CONNS]   (default 1000)
 *                    connrate's cycle, each part timed: p50 and p90 of the
 *                    dial (socket + connect), of a getsockname after it, and
 *                    of the whole cycle (diagnosis: tests/bench/connect-cost.sh)
 *   vsbench scale    [--raw-vsock] [--host H] --port P [--counts 10,100,...,100000]
 *                    [--probe-batches K] [--probe-n N] [--alt-raw CID]
 *   vsbench host     [-n ITER] [--hosts-name NAME]   host-side ns per call
 *   vsbench spawn    [-n RUNS] [--preload LIB] PROG [ARGS]  us per posix_spawn +
 *                    waitpid of PROG (a path); PROG may be a wrapper, e.g.
 *                    `vsbench spawn build/vsockify /bin/busybox true`
 *   --sockbuf S,R    set SO_SNDBUF/SO_RCVBUF before connect (0 = leave):
 *                    reproduces what the shim replays from a TCP socket
 *   --quick          tiny sizes (for the test suite)
 *   --max-secs S     pingpong/connrate: stop after S seconds (at least 100/20
 *                    iterations), the rounds/conns reported are those done
 *
 * Output: one line of key=value pairs per client run.  Any data mismatch
 * exits with status 3, so a broken path can never post a fast number.
 *
 * Protocol (client -> server, first byte): 'B' + u64 length + data, the server
 * verifies every byte and answers u64 received + u64 status (0 = ok); 'P' then
 * 1-byte echo until EOF; 'C' one byte answered by 'c', then close.  A --hold
 * server only accepts and keeps the connections (for scale).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

extern char **environ;

#define PAT_P 65521u /* prime period of the byte pattern */
#define CHUNK 65536u

static int raw_vsock;
static const char *opt_host;
static const char *opt_port;
static long opt_n = -1;
static int opt_quick;
static int opt_hold;
static double opt_max_secs; /* pingpong/connrate: stop early after this long */
static const char *opt_counts = "10,100,1000,10000,100000";
static const char *opt_alt_raw; /* scale: pair each probe batch with raw vsock to this CID */
static int opt_probe_batches = 7;
static int opt_probe_n = 20; /* scale: connect+close cycles per probe batch */
static const char *opt_hosts_name;
static const char *opt_preload;
static int opt_sndbuf, opt_rcvbuf; /* --sockbuf SND,RCV: set before connect (diagnosis) */

static unsigned char pattern[2 * PAT_P + CHUNK];

static void die(const char *what)
{
	fprintf(stderr, "vsbench: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void fail(const char *msg)
{
	fprintf(stderr, "vsbench: FAIL: %s\n", msg);
	exit(3);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* pattern[i] = byte i mod PAT_P of a xorshift64 stream; stored twice over so
 * that any offset gives CHUNK contiguous bytes. */
static void make_pattern(void)
{
	uint64_t x = 0x9e3779b97f4a7c15u;
	for (size_t i = 0; i < PAT_P; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		pattern[i] = (unsigned char)(x >> 32);
	}
	for (size_t i = PAT_P; i < sizeof pattern; i++)
		pattern[i] = pattern[i - PAT_P];
}

static void write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		p += n;
		len -= (size_t)n;
	}
}

/* 0 on success, -1 on EOF before len bytes. */
static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void set_nodelay(int fd)
{
	int one = 1;
	if (!raw_vsock && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
		die("setsockopt TCP_NODELAY");
}

/* ---- addresses ---------------------------------------------------------- */

struct target {
	struct sockaddr_storage ss;
	socklen_t len;
	int family;
};

static unsigned long parse_ul(const char *s, const char *what)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || !*s || *end) {
		fprintf(stderr, "vsbench: bad %s: %s\n", what, s);
		exit(2);
	}
	return v;
}

static void resolve(struct target *t, int passive)
{
	memset(t, 0, sizeof *t);
	if (!opt_port) {
		fprintf(stderr, "vsbench: --port is required\n");
		exit(2);
	}
	if (raw_vsock) {
		struct sockaddr_vm *vm = (struct sockaddr_vm *)&t->ss;
		vm->svm_family = AF_VSOCK;
		vm->svm_cid = passive ? VMADDR_CID_ANY
				      : (unsigned)parse_ul(opt_host ? opt_host : "1", "CID");
		if (passive && opt_host)
			vm->svm_cid = (unsigned)parse_ul(opt_host, "CID");
		vm->svm_port = (unsigned)parse_ul(opt_port, "port");
		t->len = sizeof *vm;
		t->family = AF_VSOCK;
		return;
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
	if (passive)
		hints.ai_flags = AI_PASSIVE;
	struct addrinfo *ai;
	int rc = getaddrinfo(opt_host, opt_port, &hints, &ai);
	if (rc) {
		fprintf(stderr, "vsbench: getaddrinfo %s: %s\n", opt_host ? opt_host : "(null)",
			gai_strerror(rc));
		exit(2);
	}
	memcpy(&t->ss, ai->ai_addr, ai->ai_addrlen);
	t->len = ai->ai_addrlen;
	t->family = ai->ai_family;
	freeaddrinfo(ai);
}

static int dial(const struct target *t)
{
	int fd = socket(t->family, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if (opt_sndbuf && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &opt_sndbuf, sizeof opt_sndbuf) < 0)
		die("setsockopt SO_SNDBUF");
	if (opt_rcvbuf && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &opt_rcvbuf, sizeof opt_rcvbuf) < 0)
		die("setsockopt SO_RCVBUF");
	if (connect(fd, (const struct sockaddr *)&t->ss, t->len) < 0)
		die("connect");
	return fd;
}

static void raise_nofile(rlim_t want)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("getrlimit");
	if (rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want;
	if (rl.rlim_max < want)
		rl.rlim_max = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("setrlimit RLIMIT_NOFILE");
}

/* ---- server -------------------------------------------------------------- */

static void serve_bulk(int fd)
{
	uint64_t len, got = 0, status = 0;
	if (read_all(fd, &len, sizeof len) < 0)
		return;
	static unsigned char buf[CHUNK];
	while (got < len) {
		size_t want = len - got < CHUNK ? (size_t)(len - got) : CHUNK;
		ssize_t n = read(fd, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		/* pattern holds PAT_P + CHUNK bytes from any offset below PAT_P */
		if (!status && memcmp(buf, pattern + got % PAT_P, (size_t)n) != 0) {
			status = 1;
			fprintf(stderr, "vsbench server: MISMATCH in the %zd bytes at offset %" PRIu64 "\n",
				n, got);
		}
		got += (uint64_t)n;
	}
	if (got != len)
		status = status ? status : 2;
	uint64_t reply[2] = { got, status };
	write_all(fd, reply, sizeof reply);
	printf("server test=bulk bytes=%" PRIu64 " verified=%d\n", got, status == 0);
	fflush(stdout);
}

static void serve_one(int fd)
{
	unsigned char c;
	if (read_all(fd, &c, 1) < 0)
		return;
	switch (c) {
	case 'B':
		serve_bulk(fd);
		break;
	case 'P': {
		unsigned char b[256];
		for (;;) {
			ssize_t n = read(fd, b, sizeof b);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			write_all(fd, b, (size_t)n);
		}
		break;
	}
	case 'C':
		write_all(fd, "c", 1);
		break;
	default:
		fprintf(stderr, "vsbench server: unknown request byte 0x%02x\n", c);
	}
}

static _Noreturn void do_server(void)
{
	struct target t;
	resolve(&t, 1);
	if (opt_hold)
		raise_nofile(262144);
	int lfd = socket(t.family, SOCK_STREAM, 0);
	if (lfd < 0)
		die("socket");
	int one = 1;
	if (!raw_vsock)
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&t.ss, t.len) < 0)
		die("bind");
	if (listen(lfd, 4096) < 0)
		die("listen");
	printf("listening port=%s hold=%d\n", opt_port, opt_hold);
	fflush(stdout);
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept");
		}
		if (opt_hold) {
			continue; /* keep it open */
		}
		serve_one(fd);
		close(fd);
	}
}

/* ---- clients ------------------------------------------------------------ */

static uint64_t cpu_busy_jiffies(void)
{
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		die("/proc/stat");
	unsigned long long u, ni, sy, id, io, irq, sirq;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &u, &ni, &sy, &id, &io, &irq,
		   &sirq) != 7)
		fail("cannot parse /proc/stat");
	fclose(f);
	return u + ni + sy + irq + sirq;
}

static int do_bulk(void)
{
	uint64_t mib = opt_n >= 0 ? (uint64_t)opt_n : opt_quick ? 4 : 256;
	uint64_t len = mib << 20;
	struct target t;
	resolve(&t, 0);
	int fd = dial(&t);
	unsigned char hdr[9];
	hdr[0] = 'B';
	memcpy(hdr + 1, &len, sizeof len);
	uint64_t j0 = cpu_busy_jiffies();
	uint64_t t0 = now_ns();
	write_all(fd, hdr, sizeof hdr);
	uint64_t sent = 0;
	while (sent < len) {
		size_t n = len - sent < CHUNK ? (size_t)(len - sent) : CHUNK;
		write_all(fd, pattern + sent % PAT_P, n);
		sent += n;
	}
	uint64_t reply[2];
	if (read_all(fd, reply, sizeof reply) < 0)
		fail("bulk: no verdict from the server");
	uint64_t t1 = now_ns();
	uint64_t j1 = cpu_busy_jiffies();
	close(fd);
	if (reply[0] != len || reply[1] != 0) {
		fprintf(stderr, "vsbench: bulk: server received %" PRIu64 " of %" PRIu64
				" bytes, status %" PRIu64 "\n",
			reply[0], len, reply[1]);
		fail("bulk data mismatch");
	}
	double secs = (double)(t1 - t0) / 1e9;
	double busy_ms = (double)(j1 - j0) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
	double gib = (double)len / (double)(1u << 30);
	printf("test=bulk bytes=%" PRIu64 " secs=%.4f MBps=%.2f cpu_busy_ms=%.0f "
	       "cpu_ms_per_GiB=%.1f verified=1\n",
	       len, secs, (double)len / 1e6 / secs, busy_ms, busy_ms / gib);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int do_pingpong(void)
{
	long n = opt_n >= 0 ? opt_n : opt_quick ? 200 : 20000;
	if (n < 1)
		n = 1;
	struct target t;
	resolve(&t, 0);
	int fd = dial(&t);
	set_nodelay(fd);
	write_all(fd, "P", 1);
	uint64_t *d = malloc((size_t)n * sizeof *d);
	if (!d)
		die("malloc");
	uint64_t deadline = opt_max_secs > 0 ? now_ns() + (uint64_t)(opt_max_secs * 1e9) : 0;
	long done = 0;
	for (long i = 0; i < n; i++) {
		unsigned char c = (unsigned char)(i * 131 + 7), r;
		uint64_t a = now_ns();
		write_all(fd, &c, 1);
		if (read_all(fd, &r, 1) < 0)
			fail("pingpong: connection closed");
		d[i] = now_ns() - a;
		if (r != c)
			fail("pingpong: echoed byte differs");
		done = i + 1;
		if (deadline && d[i] + a > deadline && done >= 100)
			break;
	}
	n = done;
	close(fd);
	qsort(d, (size_t)n, sizeof *d, cmp_u64);
	double p50 = (double)d[(size_t)(n - 1) * 50 / 100] / 1e3;
	double p99 = (double)d[(size_t)(n - 1) * 99 / 100] / 1e3;
	printf("test=pingpong rounds=%ld p50_us=%.2f p99_us=%.2f verified=1\n", n, p50, p99);
	free(d);
	return 0;
}

static int do_connrate(void)
{
	long n = opt_n >= 0 ? opt_n : opt_quick ? 20 : 2000;
	if (n < 1)
		n = 1;
	struct target t;
	resolve(&t, 0);
	uint64_t t0 = now_ns();
	uint64_t deadline = opt_max_secs > 0 ? t0 + (uint64_t)(opt_max_secs * 1e9) : 0;
	for (long i = 0; i < n; i++) {
		if (deadline && i >= 20 && now_ns() > deadline) {
			n = i;
			break;
		}
		int fd = dial(&t);
		unsigned char r;
		write_all(fd, "C", 1);
		if (read_all(fd, &r, 1) < 0 || r != 'c')
			fail("connrate: bad or missing answer");
		close(fd);
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	printf("test=connrate conns=%ld secs=%.4f conn_per_s=%.1f verified=1\n", n, secs,
	       (double)n / secs);
	return 0;
}

static double pct_us(uint64_t *d, long n, int pct)
{
	qsort(d, (size_t)n, sizeof *d, cmp_u64);
	return (double)d[(size_t)(n - 1) * (size_t)pct / 100] / 1e3;
}

static int do_connlat(void)
{
	long n = opt_n >= 0 ? opt_n : opt_quick ? 20 : 1000;
	if (n < 1)
		n = 1;
	uint64_t *dial_ns = calloc((size_t)n, sizeof(uint64_t));
	uint64_t *name_ns = calloc((size_t)n, sizeof(uint64_t));
	uint64_t *cycle_ns = calloc((size_t)n, sizeof(uint64_t));
	if (!dial_ns || !name_ns || !cycle_ns)
		die("calloc");
	struct target t;
	resolve(&t, 0);
	for (long i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		unsigned char r;
		uint64_t t0 = now_ns();
		int fd = dial(&t);
		uint64_t t1 = now_ns();
		if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
			die("getsockname");
		uint64_t t2 = now_ns();
		write_all(fd, "C", 1);
		if (read_all(fd, &r, 1) < 0 || r != 'c')
			fail("connlat: bad or missing answer");
		close(fd);
		dial_ns[i] = t1 - t0;
		name_ns[i] = t2 - t1;
		cycle_ns[i] = now_ns() - t0;
	}
	printf("test=connlat conns=%ld", n);
	printf(" dial_p50_us=%.1f dial_p90_us=%.1f", pct_us(dial_ns, n, 50), pct_us(dial_ns, n, 90));
	printf(" name_p50_us=%.1f name_p90_us=%.1f", pct_us(name_ns, n, 50), pct_us(name_ns, n, 90));
	printf(" cycle_p50_us=%.1f cycle_p90_us=%.1f verified=1\n", pct_us(cycle_ns, n, 50),
	       pct_us(cycle_ns, n, 90));
	free(dial_ns);
	free(name_ns);
	free(cycle_ns);
	return 0;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size, res;
	if (!f || fscanf(f, "%ld %ld", &size, &res) != 2)
		fail("cannot read /proc/self/statm");
	fclose(f);
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Unreclaimable kernel slab, KiB (-1 if unknown): the kernel's side of a
 * live connection, which is the same for every path. */
static long slab_kib(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	long v = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "SUnreclaim: %ld kB", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

/* Microseconds per connect+close over N cycles to T. */
static double probe_us(const struct target *t, int n)
{
	uint64_t a = now_ns();
	for (int i = 0; i < n; i++)
		close(dial(t));
	return (double)(now_ns() - a) / 1e3 / n;
}

/* Hold COUNT live connections (to a --hold server); at each checkpoint report
 * RSS growth, the fill cost, and --probe-batches batches of --probe-n (20)
 * connect+close cycles.  With --alt-raw CID every batch is paired with one to raw AF_VSOCK
 * CID (same port), in alternating order, so the two methods see the same live
 * connections and the same moment of the run: probe_us=... and alt_us=...
 * give the pairs (the ratio per pair is what bench/report.py uses). */
static int do_scale(void)
{
	long counts[16];
	int nc = 0;
	char *s = strdup(opt_counts), *save = NULL;
	for (char *tok = strtok_r(s, ",", &save); tok && nc < 16; tok = strtok_r(NULL, ",", &save))
		counts[nc++] = (long)parse_ul(tok, "count");
	free(s);
	if (opt_quick)
		for (int i = 0; i < nc; i++)
			counts[i] = counts[i] > 50 ? 50 : counts[i];
	long max = nc ? counts[nc - 1] : 0;
	raise_nofile((rlim_t)max + 256);
	struct target t, alt;
	resolve(&t, 0);
	if (opt_alt_raw) {
		memset(&alt, 0, sizeof alt);
		struct sockaddr_vm *vm = (struct sockaddr_vm *)&alt.ss;
		vm->svm_family = AF_VSOCK;
		vm->svm_cid = (unsigned)parse_ul(opt_alt_raw, "--alt-raw CID");
		vm->svm_port = (unsigned)parse_ul(opt_port, "port");
		alt.len = sizeof *vm;
		alt.family = AF_VSOCK;
	}
	int *fds = calloc((size_t)max + 1, sizeof *fds);
	if (!fds)
		die("calloc");
	memset(fds, 0xff, ((size_t)max + 1) * sizeof *fds); /* touched now, not counted as growth */
	const int per_batch = opt_probe_n > 0 ? opt_probe_n : 1, batches = opt_probe_batches > 0 ? opt_probe_batches : 1;
	long rss0 = rss_kib(), slab0 = slab_kib(), live = 0;
	for (int c = 0; c < nc; c++) {
		uint64_t a = now_ns();
		long start = live;
		while (live < counts[c])
			fds[live++] = dial(&t);
		uint64_t fill = now_ns() - a;
		long rss = rss_kib() - rss0, slab = slab_kib() - slab0;
		char main_us[16 * 12] = "", alt_us[16 * 12] = "";
		size_t ml = 0, al = 0;
		for (int b = 0; b < batches && b < 16; b++) {
			double m, x = 0;
			if (opt_alt_raw && b % 2) {
				x = probe_us(&alt, per_batch);
				m = probe_us(&t, per_batch);
			} else {
				m = probe_us(&t, per_batch);
				if (opt_alt_raw)
					x = probe_us(&alt, per_batch);
			}
			ml += (size_t)snprintf(main_us + ml, sizeof main_us - ml, "%s%.1f", b ? "," : "", m);
			if (opt_alt_raw)
				al += (size_t)snprintf(alt_us + al, sizeof alt_us - al, "%s%.1f", b ? "," : "", x);
		}
		printf("test=scale live=%ld rss_delta_kib=%ld slab_delta_kib=%ld fill_us_per_connect=%.1f "
		       "probe_us=%s%s%s verified=1\n",
		       live, rss, slab, live > start ? (double)fill / 1e3 / (double)(live - start) : 0.0,
		       main_us, opt_alt_raw ? " alt_us=" : "", alt_us);
		fflush(stdout);
	}
	for (long i = 0; i < live; i++)
		close(fds[i]);
	free(fds);
	return 0;
}

/* ---- host-side overhead microbenchmarks --------------------------------- */

static int host_lfd;

static void *acceptor(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(host_lfd, NULL, NULL);
		if (fd >= 0)
			close(fd);
		else if (errno != EINTR && errno != ECONNABORTED)
			return NULL;
	}
}

static const char *hosts_name(void)
{
	static char name[256];
	if (opt_hosts_name)
		return opt_hosts_name;
	FILE *f = fopen("/etc/hosts", "r");
	char line[512];
	while (f && fgets(line, sizeof line, f)) {
		char *save = NULL, *tok = strtok_r(line, " \t\n", &save);
		if (!tok || *tok == '#')
			continue;
		while ((tok = strtok_r(NULL, " \t\n", &save))) {
			if (*tok == '#')
				break;
			if (strcmp(tok, "localhost") != 0 && strchr(tok, ':') == NULL) {
				snprintf(name, sizeof name, "%s", tok);
				fclose(f);
				return name;
			}
		}
	}
	if (f)
		fclose(f);
	return "localhost";
}

#define BATCHES 7

/* Runs BODY iters times per batch, BATCHES batches; prints the fastest batch's
 * ns/call: interference from other load only ever adds time, so the minimum is
 * the best estimate of the code's own cost on a shared machine. */
#define MEASURE(label, iters, BODY)                                                  \
	do {                                                                         \
		uint64_t res_[BATCHES];                                              \
		for (int b_ = 0; b_ < BATCHES; b_++) {                               \
			uint64_t a_ = now_ns();                                      \
			for (long i_ = 0; i_ < (iters); i_++) {                      \
				BODY;                                                \
			}                                                            \
			res_[b_] = (now_ns() - a_) * 1000 / (uint64_t)(iters);       \
		}                                                                    \
		qsort(res_, BATCHES, sizeof res_[0], cmp_u64);                       \
		printf(" %s=%.1f", label, (double)res_[0] / 1000.0);                 \
	} while (0)

static int do_host(void)
{
	long n = opt_n >= 0 ? opt_n : opt_quick ? 200 : 20000;
	long ngai = n / 10 > 0 ? n / 10 : 1, nconn = n / 20 > 0 ? n / 20 : 1;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
	const char *hn = hosts_name();
	struct addrinfo *ai;
	/* The process's first lookup, once: with rules configured, it is the
	 * one that reads them. */
	uint64_t first = now_ns();
	if (getaddrinfo(hn, "80", &hints, &ai) != 0)
		fail("getaddrinfo of the /etc/hosts name failed");
	first = now_ns() - first;
	freeaddrinfo(ai);

	host_lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sin;
	if (host_lfd < 0 || bind(host_lfd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
	    listen(host_lfd, 4096) < 0 || getsockname(host_lfd, (struct sockaddr *)&sin, &sl) < 0)
		die("listener");
	pthread_t th;
	if (pthread_create(&th, NULL, acceptor, NULL) != 0)
		fail("pthread_create");

	printf("test=host hosts_name=%s first_gai_ns=%llu", hn, (unsigned long long)first);
	MEASURE("gai_localhost_ns", ngai, {
		if (getaddrinfo("localhost", "80", &hints, &ai) != 0)
			fail("getaddrinfo localhost");
		freeaddrinfo(ai);
	});
	MEASURE("gai_hosts_ns", ngai, {
		if (getaddrinfo(hn, "80", &hints, &ai) != 0)
			fail("getaddrinfo hosts name");
		freeaddrinfo(ai);
	});
	struct linger lg = { 1, 0 }; /* RST on close: no TIME_WAIT build-up */
	MEASURE("connect_close_ns", nconn, {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0)
			die("connect to the local listener");
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		close(fd);
	});
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0)
		die("connect to the local listener");
	struct sockaddr_storage ss;
	MEASURE("getsockname_ns", n, {
		socklen_t l = sizeof ss;
		if (getsockname(fd, (struct sockaddr *)&ss, &l) < 0)
			die("getsockname");
	});
	MEASURE("getpeername_ns", n, {
		socklen_t l = sizeof ss;
		if (getpeername(fd, (struct sockaddr *)&ss, &l) < 0)
			die("getpeername");
	});
	int one = 1;
	MEASURE("setsockopt_nodelay_ns", n, {
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
			die("setsockopt");
	});
	printf(" verified=1\n");
	close(fd);
	return 0;
}

/* ---- process start-up --------------------------------------------------- */

static int do_spawn(int argc, char **argv)
{
	long n = opt_n >= 0 ? opt_n : opt_quick ? 20 : 2000;
	if (argc < 1) {
		fprintf(stderr, "vsbench spawn: PROG missing\n");
		return 2;
	}
	/* child environment: ours minus LD_PRELOAD, plus --preload */
	size_t ne = 0;
	while (environ[ne])
		ne++;
	char **env = calloc(ne + 2, sizeof *env);
	size_t k = 0;
	for (size_t i = 0; i < ne; i++)
		if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
			env[k++] = environ[i];
	char pre[4096];
	if (opt_preload) {
		snprintf(pre, sizeof pre, "LD_PRELOAD=%s", opt_preload);
		env[k++] = pre;
	}
	env[k] = NULL;
	uint64_t t0 = now_ns();
	for (long i = 0; i < n; i++) {
		pid_t pid;
		int st;
		if (posix_spawn(&pid, argv[0], NULL, NULL, argv, env) != 0)
			die("posix_spawn");
		if (waitpid(pid, &st, 0) < 0)
			die("waitpid");
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail("spawned program failed");
	}
	double us = (double)(now_ns() - t0) / 1e3 / (double)n;
	printf("test=spawn runs=%ld preload=%d us_per_run=%.2f verified=1\n", n, opt_preload != NULL,
	       us);
	return 0;
}

/* ---- main --------------------------------------------------------------- */

static void usage(void)
{
	fputs("usage: vsbench server|bulk|pingpong|connrate|connlat|scale [--raw-vsock] [--host H] "
	      "--port P [-n N] [--quick] [--max-secs S] [--hold] [--counts A,B,C]\n"
	      "       vsbench scale ... [--probe-batches K] [--alt-raw CID]\n"
	      "       vsbench host [-n N] [--quick] [--hosts-name NAME]\n"
	      "       vsbench spawn [-n N] [--quick] [--preload LIB] PROG [ARGS]\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *mode = argv[1];
	int i = 2;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--raw-vsock"))
			raw_vsock = 1;
		else if (!strcmp(a, "--quick"))
			opt_quick = 1;
		else if (!strcmp(a, "--hold"))
			opt_hold = 1;
		else if (!strcmp(a, "--host") && i + 1 < argc)
			opt_host = argv[++i];
		else if (!strcmp(a, "--port") && i + 1 < argc)
			opt_port = argv[++i];
		else if (!strcmp(a, "-n") && i + 1 < argc)
			opt_n = (long)parse_ul(argv[++i], "-n");
		else if (!strcmp(a, "--max-secs") && i + 1 < argc)
			opt_max_secs = atof(argv[++i]);
		else if (!strcmp(a, "--counts") && i + 1 < argc)
			opt_counts = argv[++i];
		else if (!strcmp(a, "--alt-raw") && i + 1 < argc)
			opt_alt_raw = argv[++i];
		else if (!strcmp(a, "--probe-n") && i + 1 < argc)
			opt_probe_n = (int)parse_ul(argv[++i], "--probe-n");
		else if (!strcmp(a, "--probe-batches") && i + 1 < argc)
			opt_probe_batches = (int)parse_ul(argv[++i], "--probe-batches");
		else if (!strcmp(a, "--hosts-name") && i + 1 < argc)
			opt_hosts_name = argv[++i];
		else if (!strcmp(a, "--sockbuf") && i + 1 < argc) {
			if (sscanf(argv[++i], "%d,%d", &opt_sndbuf, &opt_rcvbuf) != 2)
				usage();
		} else if (!strcmp(a, "--preload") && i + 1 < argc)
			opt_preload = argv[++i];
		else if (!strcmp(a, "--"))
			{ i++; break; }
		else if (a[0] == '-')
			usage();
		else
			break;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	make_pattern();
	if (!strcmp(mode, "server"))
		do_server();
	if (!strcmp(mode, "bulk"))
		return do_bulk();
	if (!strcmp(mode, "pingpong"))
		return do_pingpong();
	if (!strcmp(mode, "connrate"))
		return do_connrate();
	if (!strcmp(mode, "connlat"))
		return do_connlat();
	if (!strcmp(mode, "scale"))
		return do_scale();
	if (!strcmp(mode, "host"))
		return do_host();
	if (!strcmp(mode, "spawn"))
		return do_spawn(argc - i, argv + i);
	usage();
	return 2;
}
