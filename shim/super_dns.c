/* The supervisor's DNS responder (docs/supervisor.md, "Names"). */
#include <errno.h>

#include "super_dns.h"

void vsk_super_dns_init(const struct vsk_config *cfg, const struct vsk_rules *rs)
{
	(void)cfg;
	(void)rs;
}

bool vsk_super_dns_wanted(pid_t tid, uint64_t ip, const struct sockaddr_storage *ns,
			  socklen_t len)
{
	(void)tid;
	(void)ip;
	(void)ns;
	(void)len;
	return false;
}

int vsk_super_dns_socket(const struct sockaddr_storage *ns, socklen_t len)
{
	(void)ns;
	(void)len;
	errno = ENOSYS;
	return -1;
}
