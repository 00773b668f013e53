/* SPDX-License-Identifier: GPL-2.0 */
/*
 * phsm.ko: driver of the phsm PCIe HSM card.  Shared definitions of the
 * three parts: phsm_pci.c (device, controller, interrupts, recovery),
 * phsm_queue.c (rings, commands, timeouts) and phsm_cdev.c (/dev/phsmN).
 *
 * Documentation/phsm/driver.rst describes the driver.
 */
#ifndef _PHSM_DRV_H
#define _PHSM_DRV_H

#include <linux/atomic.h>
#include <linux/bits.h>
#include <linux/cdev.h>
#include <linux/completion.h>
#include <linux/device.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/sizes.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "phsm_dev.h"
#include "phsm_ioctl.h"
#include "phsm_proto.h"

/* Largest message the driver passes, whatever the card offers. */
#define PHSM_DRV_MAX_MSG	SZ_1M
/* Most ring entries the driver uses, whatever the card offers. */
#define PHSM_DRV_MAX_QDEPTH	64
/* Asynchronous commands one file may have submitted and not yet read. */
#define PHSM_DRV_MAX_ASYNC	64
/* Most cards (minor numbers). */
#define PHSM_DRV_MAX_CARDS	256
/* Size of a message header, the smallest message. */
#define PHSM_HDR_LEN		((u32)sizeof(struct phsm_msg_hdr))

extern unsigned int phsm_timeout_ms;

enum phsm_state {
	PHSM_LIVE,		/* serving commands */
	PHSM_RESETTING,		/* controller reset in progress */
	PHSM_DEAD,		/* the controller failed to come back */
	PHSM_REMOVED,		/* unplugged, or the registers read all ones */
};

/**
 * struct phsm_cmd - one command on its way through the ring
 * @kref:	one reference for the owner (waiter, async record), one for
 *		the ring slot while the device owns the buffers
 * @file:	the file it belongs to, or NULL for the driver's own commands
 * @node:	in the file's list of finished asynchronous commands
 * @rnode:	in a local list of commands leaving the ring
 * @opcode:	PHSM_SQE_*
 * @cid:	ring slot while it is in the ring
 * @ctx:	application context of the entry
 * @req:	request buffer (MSG), @req_len bytes, mapped while in the ring
 * @resp:	response buffer (MSG), @resp_size bytes, zeroed
 * @timeout:	jiffies from submission until the timeout
 * @deadline:	jiffies at which the command times out
 * @ping:	the driver's liveness probe: its timeout means the card hung
 * @timed_out:	the timeout was reported and ABORT written
 * @delivered:	@error and @resp_len are final and the owner was told
 * @notify:	the owner is to be told once the command left the ring
 * @error:	0 or a negative errno for the owner
 * @resp_len:	response bytes, or bytes needed with -EMSGSIZE
 * @done:	completed when @error is final (synchronous owners)
 * @async:	the result goes to @file's list of completions
 * @id:		asynchronous: the driver's id in the file
 * @user_data:	asynchronous: the caller's value
 * @resp_ptr:	asynchronous: where read() copies the response
 */
struct phsm_cmd {
	struct kref kref;
	struct phsm_file *file;
	struct list_head node;
	struct list_head rnode;
	u8 opcode;
	u16 cid;
	u64 ctx;
	void *req;
	dma_addr_t req_dma;
	u32 req_len;
	void *resp;
	dma_addr_t resp_dma;
	u32 resp_size;
	unsigned long timeout;
	unsigned long deadline;
	bool ping;
	bool timed_out;
	bool delivered;
	bool notify;
	int error;
	u32 resp_len;
	struct completion done;
	bool async;
	u64 id;
	u64 user_data;
	u64 resp_ptr;
};

/**
 * struct phsm_queue - the submission and completion rings
 * @lock:	protects everything here and the state of the card
 * @sqes:	submission ring, @depth entries
 * @cqes:	completion ring, @depth entries
 * @sq_dma:	bus address of @sqes
 * @cq_dma:	bus address of @cqes
 * @depth:	entries in each ring (QDEPTH)
 * @nslots:	commands in flight at once: @depth - 1
 * @sq_tail:	next SQ entry to fill
 * @cq_head:	next CQ entry to look at
 * @phase:	phase tag of new CQ entries
 * @slots:	command of each command id, NULL when free
 * @inflight:	slots in use
 */
struct phsm_queue {
	spinlock_t lock;	/* the rings, the slots, the card's state */
	struct phsm_sqe *sqes;
	struct phsm_cqe *cqes;
	dma_addr_t sq_dma;
	dma_addr_t cq_dma;
	u32 depth;
	u32 nslots;
	u32 sq_tail;
	u32 cq_head;
	u8 phase;
	struct phsm_cmd *slots[PHSM_DRV_MAX_QDEPTH];
	u32 inflight;
};

/**
 * struct phsm_card - one card; freed with the last reference to @dev
 * @dev:	the class device /dev/phsmN; its refcount is the card's
 * @cdev:	the character device, holds @dev while a file is open
 * @pdev:	the PCI function (a reference is held until the card is freed)
 * @regs:	BAR0; only touched while @state allows and the card is bound
 * @minor:	N of /dev/phsmN
 * @ctrl_lock:	serialises controller enable, reset and removal
 * @state:	PHSM_* state, under @q.lock
 * @gen:	controller generation, raised by each reset, under @q.lock
 * @next_ctx:	next application context value, under @q.lock
 * @own_ctx:	the driver's own context (card info, liveness probes)
 * @q:		the rings
 * @slot_wq:	waiters for a free slot or a reset to end
 * @files:	open files, under @files_lock
 * @files_lock:	protects @files
 * @watchdog:	looks for missed completions and expired commands
 * @wd_expires:	when @watchdog is due, under @q.lock
 * @wd_armed:	@watchdog is queued, under @q.lock
 * @recovery:	resets the controller, or retires a card that is gone
 * @ping:	preallocated liveness probe (a PHSM_OP_NOP)
 * @ping_busy:	@ping is in the ring, under @q.lock
 * @nvecs:	interrupt vectors: 2 (MSI-X), or 1 shared by both causes
 * @dev_version: PHSM_REG_VERSION
 * @cap:	PHSM_REG_CAP
 * @max_msg:	largest message the driver passes
 * @max_ctx:	PHSM_REG_MAX_CTX
 * @proto:	PHSM_REG_PROTO
 * @ready_ms:	longest a CSTS.RDY transition may take
 * @info:	the card's answer to PHSM_OP_GET_CARD_INFO at probe
 * @commands:	commands submitted to the ring
 * @errors:	device errors, bad completions and failed commands
 * @timeouts:	commands that timed out
 * @resets:	controller resets after probe
 */
struct phsm_card {
	struct device dev;
	struct cdev cdev;
	struct pci_dev *pdev;
	void __iomem *regs;
	int minor;

	struct mutex ctrl_lock;	/* enable, reset, removal */
	enum phsm_state state;
	u64 gen;
	u64 next_ctx;
	u64 own_ctx;

	struct phsm_queue q;
	wait_queue_head_t slot_wq;

	struct list_head files;
	spinlock_t files_lock;	/* @files */

	struct delayed_work watchdog;
	unsigned long wd_expires;
	bool wd_armed;
	struct work_struct recovery;
	struct phsm_cmd *ping;
	bool ping_busy;

	unsigned int nvecs;
	u32 dev_version;
	u32 cap;
	u32 max_msg;
	u32 max_ctx;
	u32 proto;
	unsigned int ready_ms;
	struct phsm_card_info info;

	atomic64_t commands;
	atomic64_t errors;
	atomic64_t timeouts;
	atomic64_t resets;
};

/**
 * struct phsm_file - an open /dev/phsmN: one application context
 * @kref:	the open file, and each command of it
 * @card:	the card (a reference to its @dev is held)
 * @ctx:	application context on the card; 0 for read-only files
 * @gen:	controller generation the context was opened in
 * @lock:	protects the fields below
 * @done:	finished asynchronous commands, not yet read
 * @async:	asynchronous commands submitted and not yet read
 * @next_id:	id of the next asynchronous command
 * @released:	the file was closed: finished commands are dropped
 * @wq:		readers and pollers
 * @read_lock:	one reader at a time, so records are returned in order
 * @node:	in the card's list of files
 */
struct phsm_file {
	struct kref kref;
	struct phsm_card *card;
	u64 ctx;
	u64 gen;
	spinlock_t lock;	/* @done, @async, @next_id, @released */
	struct list_head done;
	unsigned int async;
	u64 next_id;
	bool released;
	wait_queue_head_t wq;
	struct mutex read_lock;	/* one reader at a time */
	struct list_head node;
};

/* Submission flags. */
#define PHSM_SUBMIT_NONBLOCK	BIT(0)	/* no free slot: -EAGAIN */
#define PHSM_SUBMIT_RESERVE	BIT(1)	/* may take the last slot */
#define PHSM_SUBMIT_NEWCTX	BIT(2)	/* APP_OPEN: no context check */

static inline u32 phsm_readl(struct phsm_card *card, u32 reg)
{
	return readl(card->regs + reg);
}

static inline void phsm_writel(struct phsm_card *card, u32 reg, u32 val)
{
	writel(val, card->regs + reg);
}

/* phsm_queue.c */
struct phsm_cmd *phsm_cmd_alloc(struct phsm_file *file, u8 opcode,
				u32 req_len, u32 resp_size);
void phsm_cmd_put(struct phsm_cmd *cmd);
int phsm_submit(struct phsm_card *card, struct phsm_cmd *cmd,
		unsigned int flags);
int phsm_wait(struct phsm_cmd *cmd, bool killable);
int phsm_ctx_open(struct phsm_card *card, struct phsm_file *file, u64 *ctx);
int phsm_ctx_close(struct phsm_card *card, struct phsm_file *file, u64 ctx);
struct phsm_cmd *phsm_ping_alloc(void);
int phsm_exec_own_msg(struct phsm_card *card, u16 opcode, void *resp,
		      u32 resp_size, u32 *resp_len);
void phsm_queue_reset(struct phsm_card *card);
void phsm_fail_all(struct phsm_card *card, int error);
void phsm_process_cq(struct phsm_card *card);
void phsm_watchdog_fn(struct work_struct *work);
void phsm_wake_files(struct phsm_card *card);
int phsm_dev_check(struct phsm_card *card);

/* phsm_pci.c */
void phsm_schedule_recovery(struct phsm_card *card);
void phsm_handle_dev_error(struct phsm_card *card);

/* phsm_cdev.c */
extern const struct file_operations phsm_fops;
void phsm_file_post(struct phsm_cmd *cmd);
void phsm_file_put(struct phsm_file *file);

#endif /* _PHSM_DRV_H */
