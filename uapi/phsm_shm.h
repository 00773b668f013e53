/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * phsm shared-memory channels: the fast path between libphsm-pkcs11.so and
 * phsm-fw on one machine.
 *
 * A channel is the card's own ring protocol (uapi/phsm_dev.h: struct
 * phsm_sqe, struct phsm_cqe, phase tags) laid out in a memfd that the
 * client shares with the daemon, so the emulator path and the PCIe path
 * speak the same protocol.  Where the device has bus addresses, a channel
 * has byte offsets into the mapping; where the device has doorbell
 * registers and interrupts, a channel has words in the mapping and futex
 * wake-ups.
 *
 * The Unix socket stays the application context: a client connects as
 * before, then sends PHSM_OP_SHM_ATTACH (a bare request header) with the
 * memfd as SCM_RIGHTS ancillary data.  The daemon checks the mapping and
 * answers CKR_OK when a thread of its own now serves the channel; every
 * channel of a connection runs in the connection's context, and closing
 * the socket ends them all with the context.  Answers to SHM_ATTACH:
 *
 *   PHSM_ST_BAD_OPCODE	the daemon has no shared-memory transport (the
 *			client goes on over the socket)
 *   PHSM_ST_BAD_CONTEXT	on a bridge connection
 *   PHSM_ST_TRAILING	a payload was sent
 *   PHSM_ST_BAD_VALUE	no descriptor, more than one, or one that is not a
 *			sealed memfd with a valid channel header
 *   PHSM_ST_OK, rv CKR_DEVICE_MEMORY
 *			the connection has PHSM_SHM_CHANNELS_MAX channels, or
 *			the daemon could not start one (it serves at most
 *			1024 channels in all)
 *   PHSM_ST_OK, rv CKR_OK
 *			attached
 *
 * The memfd must carry the seals F_SEAL_SHRINK and F_SEAL_SEAL (a mapping
 * that could shrink under the daemon would fault it), be PHSM_SHM_DATA_OFF
 * + 64 KiB .. PHSM_SHM_DATA_OFF + PHSM_MSG_MAX bytes, and start with a
 * struct phsm_shm_hdr.  The daemon reads the header's first line once, at
 * attach; later changes to it are ignored.
 *
 * Layout (offsets from the start of the mapping):
 *
 *   0x0000  struct phsm_shm_hdr
 *   0x1000  SQ: @qdepth struct phsm_sqe
 *   0x2000  CQ: @qdepth struct phsm_cqe
 *   0x3000  data area, up to the end of the mapping
 *
 * SQ entries: PHSM_SQE_MSG only, @flags 0 (no SG lists: the data area is
 * contiguous), @app_ctx 0 (the connection's context), @req_addr and
 * @resp_addr offsets of ranges inside the data area.  The request and the
 * response may overlap: the daemon copies the whole request out of the
 * mapping before it looks at it, and writes the response after.  CQ
 * entries are as on the device, phase tag written last.
 *
 * Doorbells: the client advances @sq_tail after writing an SQ entry and
 * @cq_head after consuming a CQ entry, as it would write PHSM_REG_SQ_TAIL_DB
 * and PHSM_REG_CQ_HEAD_DB.  Each side polls for a while before it sleeps
 * (adaptive polling); before sleeping it sets its @*_sleeping word, checks
 * once more, and waits on its @*_wake futex word (FUTEX_WAIT, not private:
 * the two processes share it).  The other side, after posting, checks the
 * sleeping word and, if set, increments the wake word and calls
 * FUTEX_WAKE.  While polling, a side that finds the other side's @*_cpu
 * hint naming its own CPU yields at once instead of busy-waiting: the
 * other side cannot run until it does.
 *
 * Neither side trusts the other: the daemon bounds-checks every index,
 * offset and length, copies each entry and request before using it, and
 * never waits without a timeout; the library checks each completion and
 * copies the response out before parsing it (for a call whose answer is
 * one output, it copies everything but the output, parses that copy and
 * copies the output once, by the length it parsed, to the caller).
 *
 * This header is shared by userlib/transport_shm.c and
 * firmware-sim/daemon/shm.c; Documentation/phsm/architecture.rst
 * describes the transport.
 */
#ifndef _UAPI_PHSM_SHM_H
#define _UAPI_PHSM_SHM_H

#include <linux/types.h>

#include "phsm_dev.h"
#include "phsm_proto.h"

/*
 * Transport housekeeping opcode, next to PHSM_OP_APP_OPEN (phsm_proto.h):
 * handled by the daemon, never by the card.
 */
#define PHSM_OP_SHM_ATTACH	0x0083

#define PHSM_SHM_MAGIC		0x4d485350	/* "PSHM" */
#define PHSM_SHM_VERSION	1

#define PHSM_SHM_SQ_OFF		0x1000
#define PHSM_SHM_CQ_OFF		0x2000
#define PHSM_SHM_DATA_OFF	0x3000
#define PHSM_SHM_DATA_MIN	(64u << 10)
#define PHSM_SHM_QDEPTH_MIN	2
#define PHSM_SHM_QDEPTH_MAX	64	/* power of two; 64 SQEs fill a page */

/* Channels one connection may attach. */
#define PHSM_SHM_CHANNELS_MAX	64

/* Values of the @*_sleeping words. */
#define PHSM_SHM_AWAKE		0
#define PHSM_SHM_SLEEPING	1

/**
 * struct phsm_shm_hdr - first page of a channel's mapping
 * @magic:	%PHSM_SHM_MAGIC
 * @version:	%PHSM_SHM_VERSION
 * @qdepth:	entries in the SQ and in the CQ, a power of two,
 *		%PHSM_SHM_QDEPTH_MIN .. %PHSM_SHM_QDEPTH_MAX
 * @reserved0:	zero
 * @size:	bytes of the mapping: the memfd's size
 * @reserved1:	zero
 *
 * Written by the client (host), one line each:
 * @sq_tail:	SQ tail doorbell, < @qdepth
 * @cq_head:	CQ head doorbell, < @qdepth
 * @dev_wake:	futex word the daemon sleeps on; the client increments it
 * @dev_sleeping: set by the daemon before it sleeps on @dev_wake
 * @dev_cpu:	written by the daemon: 1 + the CPU its channel thread last
 *		ran on, 0 if unknown; a polling hint only
 *
 * Written by the daemon (device):
 * @host_wake:	futex word the client sleeps on; the daemon increments it
 * @host_sleeping: set by the client before it sleeps on @host_wake
 * @host_cpu:	written by the client: 1 + the CPU of the thread using the
 *		channel, 0 if unknown; a polling hint only
 */
struct phsm_shm_hdr {
	__le32 magic;
	__le32 version;
	__le32 qdepth;
	__le32 reserved0;
	__le64 size;
	__le64 reserved1[5];

	__le32 sq_tail __attribute__((aligned(64)));
	__le32 cq_head __attribute__((aligned(64)));
	__le32 dev_wake __attribute__((aligned(64)));
	__le32 dev_sleeping;
	__le32 dev_cpu;
	__le32 host_wake __attribute__((aligned(64)));
	__le32 host_sleeping;
	__le32 host_cpu;
};

#endif /* _UAPI_PHSM_SHM_H */
