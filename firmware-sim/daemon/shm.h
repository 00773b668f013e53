/* SPDX-License-Identifier: MIT */
/*
 * phsm-fw's side of the shared-memory channels (uapi/phsm_shm.h): each
 * channel a client attaches is served by a thread of its own, which runs
 * the channel's requests inline in the connection's application context.
 * A connection's channels are attached and detached by its reader thread
 * only, so the list needs no lock.
 */
#ifndef PHSM_FW_SHM_H
#define PHSM_FW_SHM_H

#include <stdint.h>

struct fw_card;
struct shm_chan;

/*
 * Attach the channel in memfd @fd (-1: none was sent; always consumed) to
 * application @app and start its thread.  Returns the PHSM_ST_* status
 * of the answer and, with PHSM_ST_OK, the CK_RV in *rv (see phsm_shm.h).
 */
uint32_t shm_attach(struct fw_card *card, uint64_t app, int fd,
		    struct shm_chan **list, unsigned int *count, uint32_t *rv);

/* Stop every channel of the list, wait for their threads, unmap them. */
void shm_detach_all(struct shm_chan **list, unsigned int *count);

#endif /* PHSM_FW_SHM_H */
