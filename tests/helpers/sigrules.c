/* sigrules IP PORT: the process's first connect() is made inside a SIGALRM
 * handler that interrupts malloc/free in the main thread (connect, socket
 * and close are async-signal-safe).  With rules configured, that connect
 * is the first lookup that needs the rule table.  Prints "handled=N
 * first=ERRNO_NAME" (the first connect's result); a deadlock in the handler
 * shows as a hang (run it under timeout).
 *
 * Dial only 127.x addresses with no listener on the host: the connect
 * fails with ECONNREFUSED and nothing leaves the machine.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "malloc_storm.h"

static struct sockaddr_in target;
static volatile sig_atomic_t handled;
static volatile sig_atomic_t first_errno = -1;

static void on_alarm(int sig)
{
	int saved = errno, s, rc;

	(void)sig;
	s = socket(AF_INET, SOCK_STREAM, 0);
	if (s >= 0) {
		rc = connect(s, (const struct sockaddr *)&target, sizeof(target));
		if (first_errno < 0)
			first_errno = rc == 0 ? 0 : errno;
		close(s);
	}
	handled++;
	errno = saved;
}

int main(int argc, char **argv)
{
	const char *name;

	if (argc != 3) {
		fprintf(stderr, "usage: sigrules IP PORT\n");
		return 2;
	}
	memset(&target, 0, sizeof(target));
	target.sin_family = AF_INET;
	target.sin_port = htons((unsigned short)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &target.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", argv[1]);
		return 2;
	}
	malloc_storm(on_alarm, &handled);
	name = first_errno > 0 ? strerrorname_np(first_errno) : NULL;
	/* A signal may land after the loop's last check, or on the idle
	 * thread at the same time: 20 means "at least 20". */
	printf("handled=%d first=%s\n", handled > 20 ? 20 : (int)handled,
	       first_errno == 0 ? "0" : name ? name : "?");
	return 0;
}
