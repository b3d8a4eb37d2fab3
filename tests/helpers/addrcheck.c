/* addrcheck HOST PORT: connect with getaddrinfo, then print what
 * getpeername/getsockname return for short and NULL buffers, so the shim's
 * truncation can be compared with the kernel's for plain TCP. */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	unsigned char buf[64];
	socklen_t len;
	int fd, rc;

	if (argc != 3 || getaddrinfo(argv[1], argv[2], &hints, &ai) != 0)
		return 2;
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		perror("connect");
		return 1;
	}
	memset(buf, 0xEE, sizeof(buf));
	len = 4;
	rc = getpeername(fd, (struct sockaddr *)buf, &len);
	printf("peer4 rc=%d len=%u family=%u untouched=%d\n", rc, len,
	       ((struct sockaddr *)buf)->sa_family, buf[4] == 0xEE);
	len = 0;
	rc = getsockname(fd, NULL, &len);
	printf("name0 rc=%d len=%u\n", rc, len);
	rc = getsockname(fd, (struct sockaddr *)buf, NULL);
	printf("namenull rc=%d\n", rc);
	len = sizeof(buf);
	rc = getpeername(fd, (struct sockaddr *)buf, &len);
	printf("peerfull rc=%d len=%u\n", rc, len);
	freeaddrinfo(ai);
	close(fd);
	return 0;
}
