/* gaidump: print libc resolver answers in a stable text form, so runs with
 * and without the shim can be compared byte for byte.
 *   gaidump gai NODE|- SERVICE|- FAMILY SOCKTYPE FLAGS [PROTOCOL]
 *                                           (FAMILY "-": NULL hints)
 *   gaidump hostent_r NAME BUFLEN                         (gethostbyname_r)
 *   gaidump hostaddr IPV4                                 (gethostbyaddr) */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *arg(const char *s)
{
	return strcmp(s, "-") == 0 ? NULL : s;
}

static void print_ai(const struct addrinfo *ai)
{
	for (; ai; ai = ai->ai_next) {
		char host[NI_MAXHOST], serv[NI_MAXSERV];
		int rc = getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), serv,
				     sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV);
		printf("family=%d socktype=%d protocol=%d canon=%s addr=%s port=%s\n",
		       ai->ai_family, ai->ai_socktype, ai->ai_protocol,
		       ai->ai_canonname ? ai->ai_canonname : "-", rc ? "?" : host,
		       rc ? "?" : serv);
	}
}

int main(int argc, char **argv)
{
	if ((argc == 7 || argc == 8) && !strcmp(argv[1], "gai")) {
		struct addrinfo hints = { 0 }, *res = NULL;
		const struct addrinfo *h = NULL;
		if (strcmp(argv[4], "-")) {
			hints.ai_family = atoi(argv[4]);
			hints.ai_socktype = atoi(argv[5]);
			hints.ai_flags = atoi(argv[6]);
			hints.ai_protocol = argc == 8 ? atoi(argv[7]) : 0;
			h = &hints;
		}
		int rc = getaddrinfo(arg(argv[2]), arg(argv[3]), h, &res);
		if (rc) {
			printf("error %d %s\n", rc, gai_strerror(rc));
			return 1;
		}
		print_ai(res);
		freeaddrinfo(res);
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "hostent_r")) {
		size_t len = (size_t)atol(argv[3]);
		char *buf = malloc(len ? len : 1);
		struct hostent he, *result = NULL;
		int herr = 0;
		int rc = gethostbyname_r(argv[2], &he, buf, len, &result, &herr);
		printf("rc=%d herr=%d result=%s", rc, herr, result ? result->h_name : "NULL");
		if (result) {
			char ip[INET6_ADDRSTRLEN];
			inet_ntop(result->h_addrtype, result->h_addr_list[0], ip, sizeof(ip));
			printf(" addr=%s", ip);
		}
		printf("\n");
		free(buf);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "hostaddr")) {
		struct in_addr a;
		inet_pton(AF_INET, argv[2], &a);
		struct hostent *he = gethostbyaddr(&a, sizeof(a), AF_INET);
		printf("%s\n", he ? he->h_name : "NULL");
		return 0;
	}
	fprintf(stderr, "usage: see the comment at the top of gaidump.c\n");
	return 2;
}
