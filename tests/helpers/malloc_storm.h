/* Signals that land inside malloc, for helpers that check a hook called
 * from a signal handler cannot deadlock: SIGALRM every 200 µs (the first
 * after 0.5-3.5 ms) while this thread mallocs and frees past the tcache,
 * so the arena lock is held when it comes, and a second, idle thread
 * exists, so malloc locks at all.  Runs until *handled reaches 20 (the
 * handler counts) or 50 million rounds, then disarms the timer. */
#ifndef VSOCKIFY_MALLOC_STORM_H
#define VSOCKIFY_MALLOC_STORM_H

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void *malloc_storm_idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static void malloc_storm(void (*handler)(int), volatile sig_atomic_t *handled)
{
	struct sigaction act;
	struct itimerval it = { { 0, 200 }, { 0, 0 } };
	struct timespec ts;
	pthread_t t;
	long loops = 0;

	pthread_create(&t, NULL, malloc_storm_idle, NULL);
	memset(&act, 0, sizeof(act));
	act.sa_handler = handler;
	act.sa_flags = SA_RESTART;
	sigemptyset(&act.sa_mask);
	sigaction(SIGALRM, &act, NULL);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	it.it_value.tv_usec = 500 + ts.tv_nsec % 3000;
	setitimer(ITIMER_REAL, &it, NULL);
	while (*handled < 20 && loops < 50000000) {
		void *p = malloc(4096 + (size_t)(loops % 64) * 512);
		void *q = malloc(2048 + (size_t)(loops % 32) * 256);
		free(p);
		free(q);
		loops++;
	}
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
}

#endif
