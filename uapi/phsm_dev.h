/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * phsm PCIe card: the interface between the host driver (phsm.ko) and the
 * device (today the QEMU device model in front of phsm-fw).
 *
 * The card has one submission queue (SQ) and one completion queue (CQ) in
 * host memory, NVMe style.  The host writes a struct phsm_sqe into the SQ
 * and rings the SQ tail doorbell; the device reads the request message
 * from host memory, has the firmware process it, writes the response
 * message back into host memory, posts a struct phsm_cqe into the CQ and
 * raises an interrupt.  The request and response bytes are exactly the
 * messages of uapi/phsm_proto.h; this header only says how they travel.
 *
 * All registers are 32 bits wide and little-endian; so are all multi-byte
 * values in host memory.  The device never trusts a value the host gives
 * it: a bad register write is ignored and recorded in PHSM_REG_ERR_*, a bad
 * queue entry is completed with an error status, and neither ever stops
 * the device from serving the host.
 *
 * Documentation/phsm/device.rst describes the interface in prose.
 */
#ifndef _UAPI_PHSM_DEV_H
#define _UAPI_PHSM_DEV_H

#include <linux/types.h>

/*
 * PCI identity.  The vendor/device pair comes from the range that QEMU's
 * docs/specs/pci-ids.rst leaves free for experimental use without
 * registration (1af4:10f0 - 1af4:10ff); a product would need an ID
 * assigned.  The class is "encryption controller, other".
 */
#define PHSM_PCI_VENDOR_ID	0x1af4
#define PHSM_PCI_DEVICE_ID	0x10f0
#define PHSM_PCI_CLASS		0x108000	/* base 0x10, sub 0x80, prog-if 0 */
#define PHSM_PCI_REVISION	0x01

/*
 * BARs.  BAR0: the registers below, memory, non-prefetchable.  BAR2: the
 * MSI-X table and pending-bit array (found through the MSI-X capability as
 * usual; the device model puts the table at 0 and the PBA at 0x800).
 */
#define PHSM_BAR_REGS		0
#define PHSM_BAR_MSIX		2
#define PHSM_BAR0_SIZE		0x1000

/* Interface version in PHSM_REG_VERSION: a driver refuses another major. */
#define PHSM_DEV_VERSION_MAJOR	1
#define PHSM_DEV_VERSION_MINOR	0
#define PHSM_DEV_VERSION(major, minor)	((__u32)(major) << 16 | (minor))
#define PHSM_DEV_VERSION_MAJ(v)	((v) >> 16)
#define PHSM_DEV_VERSION_MIN(v)	((v) & 0xffff)

/* Value of PHSM_REG_ID: "PHSD".  All ones means the device is gone. */
#define PHSM_DEV_ID_MAGIC	0x44534850

/*
 * BAR0 register map.  Only naturally aligned 32-bit accesses are valid;
 * 64-bit values are split into _LO and _HI halves.  RO: writes ignored;
 * WO: reads return 0.  Any invalid access (other size, misaligned, unknown
 * offset, write to a read-only register) reads as 0, is ignored as a
 * write, and records PHSM_ERR_REG_ACCESS.
 */
#define PHSM_REG_ID		0x000	/* RO  PHSM_DEV_ID_MAGIC */
#define PHSM_REG_VERSION	0x004	/* RO  PHSM_DEV_VERSION() */
#define PHSM_REG_CAP		0x008	/* RO  PHSM_CAP_* fields */
#define PHSM_REG_MAX_MSG	0x00c	/* RO  largest request or response, bytes */
#define PHSM_REG_MAX_CTX	0x010	/* RO  application contexts open at once */
#define PHSM_REG_PROTO		0x014	/* RO  PHSM_PROTO_* fields */
#define PHSM_REG_CC		0x018	/* RW  controller configuration, PHSM_CC_* */
#define PHSM_REG_CSTS		0x01c	/* RO  controller status, PHSM_CSTS_* */
#define PHSM_REG_INTMS		0x020	/* RW1S interrupt mask set; reads the mask */
#define PHSM_REG_INTMC		0x024	/* RW1C interrupt mask clear; reads the mask */
#define PHSM_REG_ISR		0x028	/* RO  interrupt causes pending, PHSM_INT_* */
#define PHSM_REG_ERR_CODE	0x02c	/* RW  first error recorded, PHSM_ERR_*; write: acknowledge */
#define PHSM_REG_ERR_INFO	0x030	/* RO  detail of ERR_CODE */
#define PHSM_REG_ERR_COUNT	0x034	/* RO  errors recorded since acknowledged (saturates) */
#define PHSM_REG_QDEPTH		0x038	/* RW  entries in each ring; locked while enabled */
#define PHSM_REG_MAX_SGE	0x03c	/* RO  entries in one SG list; 0: no SG lists,
					 * else at least MAX_MSG / 4096 + 1 */
#define PHSM_REG_SQ_BASE_LO	0x040	/* RW  SQ bus address; locked while enabled */
#define PHSM_REG_SQ_BASE_HI	0x044
#define PHSM_REG_CQ_BASE_LO	0x048	/* RW  CQ bus address; locked while enabled */
#define PHSM_REG_CQ_BASE_HI	0x04c
#define PHSM_REG_SQ_TAIL_DB	0x100	/* WO  SQ tail doorbell: new tail index */
#define PHSM_REG_CQ_HEAD_DB	0x104	/* WO  CQ head doorbell: new head index */
#define PHSM_REG_ABORT		0x108	/* WO  abort the command with this cid */

/* PHSM_REG_CAP */
#define PHSM_CAP_MQES(cap)	((cap) & 0xffff)	/* most ring entries, a power of two >= 2 */
#define PHSM_CAP_TO(cap)	(((cap) >> 16) & 0xff)	/* worst ready transition, 500 ms units */
#define PHSM_CAP_TO_MS		500

/* PHSM_REG_PROTO: the range of PHSM_PROTO_VERSION the firmware speaks. */
#define PHSM_REG_PROTO_MIN(v)	((v) & 0xffff)
#define PHSM_REG_PROTO_MAX(v)	((v) >> 16)

/* PHSM_REG_CC: all other bits must be zero (else PHSM_ERR_BAD_VALUE). */
#define PHSM_CC_EN		(1u << 0)	/* 1: run the queues; 1 -> 0: reset */

/* PHSM_REG_CSTS */
#define PHSM_CSTS_RDY		(1u << 0)	/* queues running */
#define PHSM_CSTS_CFS		(1u << 1)	/* fatal: reset (CC.EN 1 -> 0) needed */

/*
 * Interrupt causes: bits of PHSM_REG_ISR, PHSM_REG_INTMS and PHSM_REG_INTMC.
 * A cause signals when it is pending in ISR and not masked.
 */
#define PHSM_INT_CQ		(1u << 0)	/* the CQ holds entries the host has not consumed */
#define PHSM_INT_ERR		(1u << 1)	/* an error was recorded and not yet acknowledged */
#define PHSM_INT_ALL		(PHSM_INT_CQ | PHSM_INT_ERR)

/* MSI-X vectors.  With MSI or INTx, both causes share the one interrupt. */
#define PHSM_MSIX_VEC_CQ	0
#define PHSM_MSIX_VEC_ERR	1
#define PHSM_MSIX_VECS		2

/*
 * Device error codes in PHSM_REG_ERR_CODE, with what PHSM_REG_ERR_INFO
 * holds.  Codes below 0x80 are host mistakes the device refused and got
 * over; codes from 0x80 are fatal and come with PHSM_CSTS_CFS.
 */
enum phsm_dev_error {
	PHSM_ERR_NONE		= 0x00,
	PHSM_ERR_REG_ACCESS	= 0x01,	/* invalid register access; info: offset | size << 16 */
	PHSM_ERR_REG_LOCKED	= 0x02,	/* queue register written while enabled; info: offset */
	PHSM_ERR_BAD_VALUE	= 0x03,	/* reserved bits set in a register write; info: offset */
	PHSM_ERR_QUEUE_CONFIG	= 0x04,	/* CC.EN set with bad queue registers; info: offset of the bad one */
	PHSM_ERR_SQ_TAIL	= 0x05,	/* SQ tail doorbell value >= QDEPTH; info: value */
	PHSM_ERR_CQ_HEAD	= 0x06,	/* CQ head doorbell beyond the posted entries; info: value */
	PHSM_ERR_NOT_READY	= 0x07,	/* doorbell or abort written while not ready; info: offset */
	PHSM_ERR_CQ_FULL	= 0x08,	/* a completion waits for CQ space; info: its cid */

	PHSM_ERR_FATAL_DMA	= 0x80,	/* reading the SQ or writing the CQ failed; info: 0 SQ, 1 CQ */
	PHSM_ERR_FATAL_FIRMWARE	= 0x81,	/* the firmware is not reachable */
	PHSM_ERR_FATAL_INTERNAL	= 0x82,	/* the device failed in itself */
};

/*
 * Alignment in host memory: the rings on a page, SG lists on an entry.
 * Request and response buffers and SG segments may start at any byte.
 */
#define PHSM_RING_ALIGN		4096
#define PHSM_SGL_ALIGN		16

/* Submission queue entry opcodes. */
enum phsm_sqe_opcode {
	PHSM_SQE_MSG		= 0x01,	/* one phsm_proto.h request, one response */
	PHSM_SQE_APP_OPEN	= 0x02,	/* open application context @app_ctx */
	PHSM_SQE_APP_CLOSE	= 0x03,	/* close it, after its earlier commands */
};

/* Submission queue entry flags. */
#define PHSM_SQE_F_REQ_SGL	(1u << 0)	/* @req_addr points to an SG list */
#define PHSM_SQE_F_RESP_SGL	(1u << 1)	/* @resp_addr points to an SG list */
#define PHSM_SQE_F_ALL		(PHSM_SQE_F_REQ_SGL | PHSM_SQE_F_RESP_SGL)

/**
 * struct phsm_sqe - submission queue entry, 64 bytes
 * @cid:	command id, chosen by the host, echoed in the completion;
 *		unique among the host's outstanding commands
 * @opcode:	PHSM_SQE_*
 * @flags:	MSG: PHSM_SQE_F_* bits, no others; else zero
 * @req_len:	MSG: length of the request message, 40 .. PHSM_REG_MAX_MSG;
 *		else zero
 * @app_ctx:	application context, non-zero, chosen by the host when it
 *		opens the context.  For MSG it must equal the app_ctx in the
 *		request's header
 * @req_addr:	MSG: bus address of the request, or of its SG list; else zero
 * @resp_addr:	MSG: bus address of the response buffer, or of its SG list;
 *		else zero
 * @resp_cap:	MSG: bytes available for the response, at least 40 (the
 *		device uses no more than PHSM_REG_MAX_MSG of them); else zero
 * @reserved0:	must be zero
 * @reserved1:	must be zero
 */
struct phsm_sqe {
	__le16 cid;
	__u8 opcode;
	__u8 flags;
	__le32 req_len;
	__le64 app_ctx;
	__le64 req_addr;
	__le64 resp_addr;
	__le32 resp_cap;
	__le32 reserved0;
	__le64 reserved1[3];
};

/**
 * struct phsm_sge - one element of a scatter/gather list
 * @addr:	bus address of the segment, any byte alignment
 * @len:	bytes in the segment, non-zero
 * @reserved:	must be zero
 *
 * An SG list is an array of these, contiguous and PHSM_SGL_ALIGN aligned in
 * host memory.  The device walks it until the lengths add up to the
 * buffer's size (@req_len, or @resp_cap capped at PHSM_REG_MAX_MSG) and
 * reads no entry after that.  PHSM_CQE_INVALID_FIELD: the size is not
 * reached within PHSM_REG_MAX_SGE entries, an entry has length 0, or an
 * entry's @reserved is not zero.
 */
struct phsm_sge {
	__le64 addr;
	__le32 len;
	__le32 reserved;
};

/*
 * Completion status codes, in bits 15:1 of phsm_cqe.status.  Only SUCCESS,
 * DMA_WRITE and RESP_OVERFLOW come after the firmware executed the
 * request; INTERNAL may come before or after; all others before.
 */
enum phsm_cqe_status {
	PHSM_CQE_SUCCESS	= 0x00,	/* done; MSG: the response was written */
	PHSM_CQE_INVALID_OPCODE	= 0x01,	/* @opcode unknown */
	PHSM_CQE_INVALID_FIELD	= 0x02,	/* unknown flag, reserved field not zero,
					 * zero or wrapping address, bad SG list */
	PHSM_CQE_INVALID_LENGTH	= 0x03,	/* @req_len or @resp_cap out of range */
	PHSM_CQE_BAD_CONTEXT	= 0x04,	/* @app_ctx zero, not open (MSG, APP_CLOSE)
					 * or already open (APP_OPEN) */
	PHSM_CQE_NO_RESOURCES	= 0x05,	/* APP_OPEN: PHSM_REG_MAX_CTX contexts are open;
					 * or the device could not allocate */
	PHSM_CQE_DMA_READ	= 0x06,	/* reading the request or an SG list failed */
	PHSM_CQE_DMA_WRITE	= 0x07,	/* executed, but writing the response failed */
	PHSM_CQE_RESP_OVERFLOW	= 0x08,	/* executed, but the response did not fit:
					 * nothing written, @resp_len is the size needed */
	PHSM_CQE_ABORTED	= 0x09,	/* aborted before it started */
	PHSM_CQE_INTERNAL	= 0x0a,	/* the device failed on this command */
};

#define PHSM_CQE_PHASE		0x1u
#define PHSM_CQE_STATUS(status)	((status) >> 1)

/**
 * struct phsm_cqe - completion queue entry, 16 bytes
 * @resp_len:	MSG with PHSM_CQE_SUCCESS: bytes of response written;
 *		PHSM_CQE_RESP_OVERFLOW: bytes the response needs; else zero
 * @reserved0:	written as zero
 * @sq_head:	the device's SQ head after fetching this command: entries
 *		before it may be reused
 * @reserved1:	written as zero
 * @cid:	the command's id
 * @status:	bit 0: phase tag; bits 15:1: PHSM_CQE_* status
 *
 * The device writes the whole entry at once with the @status word last,
 * so an entry whose phase tag matches the host's current phase is complete.
 */
struct phsm_cqe {
	__le32 resp_len;
	__le32 reserved0;
	__le16 sq_head;
	__le16 reserved1;
	__le16 cid;
	__le16 status;
};

#endif /* _UAPI_PHSM_DEV_H */
