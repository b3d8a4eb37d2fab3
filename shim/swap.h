/* The fd swap: building the vsock socket that replaces an app's TCP one. */
#ifndef VSOCKIFY_SWAP_H
#define VSOCKIFY_SWAP_H

#include "shim.h"

enum {
	VSK_CHECK_OK = 0,
	VSK_CHECK_NOT_INET,   /* not an inet socket: hand to libc unchanged */
	VSK_CHECK_NOT_STREAM, /* inet, but UDP/raw/SCTP: vsock can't carry it */
};

/* Is fd a TCP socket we can swap for a connect/bind to sa?  Also tells
 * which family the app will expect to see. */
int vsk_inet_stream_check(int fd, const struct sockaddr *sa,
			  enum vsk_app_family *fam);
/* A fresh, marked AF_VSOCK socket carrying app_fd's flags and options. */
int vsk_new_vsock_for(int app_fd, enum vsk_app_family fam, int *err);
/* Move vfd onto app_fd's number and record it as ours. */
int vsk_install_vsock(int vfd, int app_fd, enum vsk_app_family fam,
		      unsigned extra_state, int *err);
int vsk_bind_free_port(int vfd, uint32_t cid);
/* The bit vsk_fd_touch() records for an option the swap replays, or 0. */
unsigned vsk_replay_bit(int level, int optname);
void vsk_replay_init(void);
/* A plain TCP socket of the app's family, to ask the kernel what TCP
 * would say about an option. */
int vsk_throwaway_socket(enum vsk_app_family fam);

#endif
