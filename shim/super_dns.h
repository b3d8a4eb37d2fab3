/* The supervisor's DNS responder for programs with their own resolver
 * (Go): it answers our names and forwards every other query unchanged. */
#ifndef VSOCKIFY_SUPER_DNS_H
#define VSOCKIFY_SUPER_DNS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/core.h"

void vsk_super_dns_init(const struct vsk_config *cfg, const struct vsk_rules *rs);
/* Is this UDP connect to port 53 (made at instruction ip by thread tid)
 * Go's resolver asking a nameserver?  Only that one checks no source
 * address, so only it may be given the responder. */
bool vsk_super_dns_wanted(pid_t tid, uint64_t ip, const struct sockaddr_storage *ns,
			  socklen_t len);
/* A datagram socket for the program, connected to the responder, which
 * forwards what it does not answer to ns.  -1 with errno. */
int vsk_super_dns_socket(const struct sockaddr_storage *ns, socklen_t len);

#endif
