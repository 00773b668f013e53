// SPDX-License-Identifier: GPL-2.0
/*
 * phsm.ko: the submission and completion rings, the commands that travel
 * through them, and their timeouts.
 *
 * A command takes a slot (its command id) when it enters the ring and
 * leaves it when the device completes it, or when a reset or a removal
 * takes the ring away.  Its buffers are DMA-mapped exactly while it holds
 * the slot.  Its owner (a waiting thread, or a file's list of completions)
 * is told once: by the completion, by the timeout, or by the reset.
 */
#include <linux/dma-mapping.h>
#include <linux/jiffies.h>
#include <linux/minmax.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "phsm.h"

static void phsm_cmd_free(struct kref *kref)
{
	struct phsm_cmd *cmd = container_of(kref, struct phsm_cmd, kref);

	kfree(cmd->req);
	kfree(cmd->resp);
	if (cmd->file)
		phsm_file_put(cmd->file);
	kfree(cmd);
}

void phsm_cmd_put(struct phsm_cmd *cmd)
{
	kref_put(&cmd->kref, phsm_cmd_free);
}

static unsigned long phsm_default_timeout(void)
{
	return msecs_to_jiffies(max(READ_ONCE(phsm_timeout_ms), 1u));
}

/**
 * phsm_cmd_alloc - a command with its buffers
 * @file:	the file it belongs to (a reference is taken), or NULL
 * @opcode:	PHSM_SQE_*
 * @req_len:	request bytes (MSG); the caller fills them all
 * @resp_size:	response buffer bytes (MSG), zeroed so that nothing the
 *		device did not write can reach userspace
 */
struct phsm_cmd *phsm_cmd_alloc(struct phsm_file *file, u8 opcode,
				u32 req_len, u32 resp_size)
{
	struct phsm_cmd *cmd;

	cmd = kzalloc(sizeof(*cmd), GFP_KERNEL);
	if (!cmd)
		return NULL;
	kref_init(&cmd->kref);
	init_completion(&cmd->done);
	INIT_LIST_HEAD(&cmd->node);
	cmd->opcode = opcode;
	cmd->timeout = phsm_default_timeout();
	if (req_len) {
		cmd->req = kmalloc(req_len, GFP_KERNEL | __GFP_NOWARN);
		cmd->req_len = req_len;
	}
	if (resp_size) {
		cmd->resp = kzalloc(resp_size, GFP_KERNEL | __GFP_NOWARN);
		cmd->resp_size = resp_size;
	}
	if ((req_len && !cmd->req) || (resp_size && !cmd->resp)) {
		kfree(cmd->req);
		kfree(cmd->resp);
		kfree(cmd);
		return NULL;
	}
	if (file) {
		kref_get(&file->kref);
		cmd->file = file;
	}
	return cmd;
}

static int phsm_cmd_map(struct phsm_card *card, struct phsm_cmd *cmd)
{
	struct device *dma = &card->pdev->dev;

	if (cmd->opcode != PHSM_SQE_MSG)
		return 0;
	cmd->req_dma = dma_map_single(dma, cmd->req, cmd->req_len,
				      DMA_TO_DEVICE);
	if (dma_mapping_error(dma, cmd->req_dma))
		return -ENOMEM;
	cmd->resp_dma = dma_map_single(dma, cmd->resp, cmd->resp_size,
				       DMA_FROM_DEVICE);
	if (dma_mapping_error(dma, cmd->resp_dma)) {
		dma_unmap_single(dma, cmd->req_dma, cmd->req_len,
				 DMA_TO_DEVICE);
		return -ENOMEM;
	}
	return 0;
}

static void phsm_cmd_unmap(struct phsm_card *card, struct phsm_cmd *cmd)
{
	struct device *dma = &card->pdev->dev;

	if (cmd->opcode != PHSM_SQE_MSG)
		return;
	dma_unmap_single(dma, cmd->req_dma, cmd->req_len, DMA_TO_DEVICE);
	dma_unmap_single(dma, cmd->resp_dma, cmd->resp_size, DMA_FROM_DEVICE);
}

/* Tell the owner.  May run under the queue lock: it never frees @cmd. */
static void phsm_notify(struct phsm_cmd *cmd)
{
	cmd->notify = false;
	if (cmd->async)
		phsm_file_post(cmd);
	else
		complete(&cmd->done);
}

/* Settle the owner's result, once; the caller notifies. */
static bool phsm_settle(struct phsm_cmd *cmd, int error, u32 resp_len)
{
	if (cmd->delivered)
		return false;
	cmd->delivered = true;
	cmd->error = error;
	cmd->resp_len = resp_len;
	return true;
}

/*
 * Take @cmd out of its slot, under the queue lock.  It goes on @out; the
 * caller hands it to phsm_finish() after dropping the lock.
 */
static void phsm_retire(struct phsm_card *card, struct phsm_cmd *cmd,
			int error, u32 resp_len, struct list_head *out)
{
	struct phsm_queue *q = &card->q;

	q->slots[cmd->cid] = NULL;
	q->inflight--;
	phsm_cmd_unmap(card, cmd);
	if (cmd->ping)
		card->ping_busy = false;
	if (phsm_settle(cmd, error, resp_len))
		cmd->notify = true;
	list_add_tail(&cmd->rnode, out);
}

/* Notify the owners of retired commands and drop the slots' references. */
static void phsm_finish(struct phsm_card *card, struct list_head *out)
{
	struct phsm_cmd *cmd, *tmp;

	if (list_empty(out))
		return;
	list_for_each_entry_safe(cmd, tmp, out, rnode) {
		list_del(&cmd->rnode);
		if (cmd->notify)
			phsm_notify(cmd);
		phsm_cmd_put(cmd);
	}
	wake_up_all(&card->slot_wq);
}

static void phsm_watchdog_arm(struct phsm_card *card, unsigned long when)
{
	unsigned long now = jiffies;

	if (card->wd_armed && time_before_eq(card->wd_expires, when))
		return;
	card->wd_armed = true;
	card->wd_expires = when;
	mod_delayed_work(system_wq, &card->watchdog,
			 time_after(when, now) ? when - now : 0);
}

/**
 * phsm_dev_check - is the device still there and well?
 * @card:	the card; under the queue lock, while the card is bound
 *
 * Return: 0, -ENODEV if the registers read all ones (the card is gone),
 * -EIO if the controller stopped or failed.  Recovery is then scheduled.
 */
int phsm_dev_check(struct phsm_card *card)
{
	u32 csts = phsm_readl(card, PHSM_REG_CSTS);

	if (csts != ~0u && !(csts & PHSM_CSTS_CFS) && (csts & PHSM_CSTS_RDY))
		return 0;
	phsm_schedule_recovery(card);
	return csts == ~0u ? -ENODEV : -EIO;
}

static bool phsm_slot_free(struct phsm_card *card, unsigned int flags)
{
	u32 limit = card->q.nslots;

	/* The last slot is kept for the liveness probe. */
	if (!(flags & PHSM_SUBMIT_RESERVE))
		limit--;
	return card->q.inflight < limit;
}

static void phsm_set_hdr_ctx(struct phsm_cmd *cmd)
{
	struct phsm_msg_hdr *hdr = cmd->req;

	hdr->app_ctx = cpu_to_le64(cmd->ctx);
}

static void phsm_sqe_write(struct phsm_queue *q, struct phsm_cmd *cmd)
{
	struct phsm_sqe sqe;

	memset(&sqe, 0, sizeof(sqe));
	sqe.cid = cpu_to_le16(cmd->cid);
	sqe.opcode = cmd->opcode;
	sqe.app_ctx = cpu_to_le64(cmd->ctx);
	if (cmd->opcode == PHSM_SQE_MSG) {
		sqe.req_len = cpu_to_le32(cmd->req_len);
		sqe.req_addr = cpu_to_le64(cmd->req_dma);
		sqe.resp_addr = cpu_to_le64(cmd->resp_dma);
		sqe.resp_cap = cpu_to_le32(cmd->resp_size);
	}
	memcpy(&q->sqes[q->sq_tail], &sqe, sizeof(sqe));
	if (++q->sq_tail == q->depth)
		q->sq_tail = 0;
}

/*
 * Put @cmd into the ring, under the queue lock.  -EAGAIN: no slot now, or
 * a reset is in progress; the caller may wait and try again.
 */
static int phsm_submit_locked(struct phsm_card *card, struct phsm_cmd *cmd,
			      unsigned int flags)
{
	struct phsm_queue *q = &card->q;
	struct phsm_file *file = cmd->file;
	u32 cid;
	int ret;

	if (card->state == PHSM_REMOVED || card->state == PHSM_DEAD)
		return -ENODEV;
	if (file && !(flags & PHSM_SUBMIT_NEWCTX) && file->gen != card->gen)
		return -ESTALE;
	if (card->state != PHSM_LIVE || !phsm_slot_free(card, flags))
		return -EAGAIN;
	ret = phsm_dev_check(card);
	if (ret)
		return ret;

	for (cid = 0; cid < q->nslots; cid++)
		if (!q->slots[cid])
			break;
	if (WARN_ON_ONCE(cid == q->nslots))
		return -EAGAIN;

	if (flags & PHSM_SUBMIT_NEWCTX) {
		cmd->ctx = card->next_ctx++;
		if (file) {
			file->ctx = cmd->ctx;
			file->gen = card->gen;
		}
	} else if (file) {
		cmd->ctx = file->ctx;
	} else if (cmd->opcode == PHSM_SQE_MSG) {
		cmd->ctx = card->own_ctx;
	}
	if (cmd->opcode == PHSM_SQE_MSG)
		phsm_set_hdr_ctx(cmd);

	ret = phsm_cmd_map(card, cmd);
	if (ret)
		return ret;

	kref_get(&cmd->kref);
	cmd->cid = cid;
	cmd->deadline = jiffies + cmd->timeout;
	q->slots[cid] = cmd;
	q->inflight++;
	phsm_sqe_write(q, cmd);
	/* writel() orders the entry in memory before the doorbell. */
	phsm_writel(card, PHSM_REG_SQ_TAIL_DB, q->sq_tail);
	atomic64_inc(&card->commands);
	phsm_watchdog_arm(card, cmd->deadline);
	return 0;
}

static bool phsm_may_retry(struct phsm_card *card, struct phsm_cmd *cmd,
			   unsigned int flags)
{
	enum phsm_state state = READ_ONCE(card->state);

	if (state == PHSM_REMOVED || state == PHSM_DEAD)
		return true;
	if (cmd->file && !(flags & PHSM_SUBMIT_NEWCTX) &&
	    cmd->file->gen != READ_ONCE(card->gen))
		return true;
	return state == PHSM_LIVE && phsm_slot_free(card, flags);
}

/**
 * phsm_submit - put a command into the ring
 * @card:	the card
 * @cmd:	the command, with its request filled in
 * @flags:	PHSM_SUBMIT_*
 *
 * Waits interruptibly for a free slot (or for a reset to end) unless
 * PHSM_SUBMIT_NONBLOCK.  Once it returns 0, the owner will be told
 * exactly once.  Nothing was sent when it fails.
 */
int phsm_submit(struct phsm_card *card, struct phsm_cmd *cmd,
		unsigned int flags)
{
	int ret;

	for (;;) {
		spin_lock(&card->q.lock);
		ret = phsm_submit_locked(card, cmd, flags);
		spin_unlock(&card->q.lock);
		if (ret != -EAGAIN || (flags & PHSM_SUBMIT_NONBLOCK))
			return ret;
		ret = wait_event_interruptible(card->slot_wq,
					       phsm_may_retry(card, cmd, flags));
		if (ret)
			return ret;
	}
}

/**
 * phsm_wait - wait until the owner of a submitted command is told
 * @cmd:	a command submitted by the caller
 * @killable:	give up on a fatal signal (-EINTR); the command goes on
 *		and its result is dropped
 *
 * Never longer than the command's timeout, which the watchdog enforces.
 */
int phsm_wait(struct phsm_cmd *cmd, bool killable)
{
	if (!killable)
		wait_for_completion(&cmd->done);
	else if (wait_for_completion_killable(&cmd->done))
		return -EINTR;
	return cmd->error;
}

/* Open (APP_OPEN) or close (APP_CLOSE) a context and wait for the card. */
static int phsm_exec_ctx_cmd(struct phsm_card *card, struct phsm_file *file,
			     u8 opcode, u64 *ctx)
{
	struct phsm_cmd *cmd;
	unsigned int flags = 0;
	int ret;

	cmd = phsm_cmd_alloc(file, opcode, 0, 0);
	if (!cmd)
		return -ENOMEM;
	if (opcode == PHSM_SQE_APP_OPEN)
		flags |= PHSM_SUBMIT_NEWCTX;
	else
		cmd->ctx = *ctx;
	ret = phsm_submit(card, cmd, flags);
	if (ret)
		goto out;
	if (opcode == PHSM_SQE_APP_OPEN)
		*ctx = cmd->ctx;
	ret = phsm_wait(cmd, false);
	if (ret == -ETIMEDOUT && opcode == PHSM_SQE_APP_OPEN) {
		/*
		 * The open may still happen on the card: queue a close
		 * behind it, which the card runs after it.  Nobody waits.
		 */
		struct phsm_cmd *close;

		close = phsm_cmd_alloc(NULL, PHSM_SQE_APP_CLOSE, 0, 0);
		if (close) {
			close->ctx = cmd->ctx;
			phsm_submit(card, close, PHSM_SUBMIT_NONBLOCK);
			phsm_cmd_put(close);
		}
	}
out:
	phsm_cmd_put(cmd);
	return ret;
}

/**
 * phsm_ctx_open - open a new application context on the card
 * @card:	the card
 * @file:	the file that will own it (its ctx and gen are set), or NULL
 *		for the driver's own context
 * @ctx:	out: the context value
 */
int phsm_ctx_open(struct phsm_card *card, struct phsm_file *file, u64 *ctx)
{
	return phsm_exec_ctx_cmd(card, file, PHSM_SQE_APP_OPEN, ctx);
}

/**
 * phsm_ctx_close - close an application context and wait for the card
 * @card:	the card
 * @file:	the file whose context it is (-ESTALE if a reset already
 *		closed it), or NULL
 * @ctx:	the context, when @file is NULL
 */
int phsm_ctx_close(struct phsm_card *card, struct phsm_file *file, u64 ctx)
{
	return phsm_exec_ctx_cmd(card, file, PHSM_SQE_APP_CLOSE, &ctx);
}

static void phsm_msg_hdr_init(void *buf, u16 opcode)
{
	struct phsm_msg_hdr *hdr = buf;

	memset(hdr, 0, sizeof(*hdr));
	hdr->magic = cpu_to_le32(PHSM_PROTO_MAGIC);
	hdr->version = cpu_to_le16(PHSM_PROTO_VERSION);
	hdr->opcode = cpu_to_le16(opcode);
	hdr->length = cpu_to_le32(PHSM_HDR_LEN);
	hdr->tag = cpu_to_le32(opcode);
}

/**
 * phsm_exec_own_msg - send a request without payload in the driver's own
 * context and wait for the answer
 * @card:	the card
 * @opcode:	PHSM_OP_*
 * @resp:	buffer for the response
 * @resp_size:	its size, at least PHSM_HDR_LEN
 * @resp_len:	out: bytes of response
 */
int phsm_exec_own_msg(struct phsm_card *card, u16 opcode, void *resp,
		      u32 resp_size, u32 *resp_len)
{
	struct phsm_cmd *cmd;
	int ret;

	cmd = phsm_cmd_alloc(NULL, PHSM_SQE_MSG, PHSM_HDR_LEN, resp_size);
	if (!cmd)
		return -ENOMEM;
	phsm_msg_hdr_init(cmd->req, opcode);
	ret = phsm_submit(card, cmd, 0);
	if (!ret)
		ret = phsm_wait(cmd, false);
	if (!ret) {
		memcpy(resp, cmd->resp, cmd->resp_len);
		*resp_len = cmd->resp_len;
	}
	phsm_cmd_put(cmd);
	return ret;
}

/* The preallocated liveness probe: a NOP in the driver's own context. */
struct phsm_cmd *phsm_ping_alloc(void)
{
	struct phsm_cmd *cmd;

	cmd = phsm_cmd_alloc(NULL, PHSM_SQE_MSG, PHSM_HDR_LEN,
			     2 * PHSM_HDR_LEN);
	if (cmd) {
		phsm_msg_hdr_init(cmd->req, PHSM_OP_NOP);
		cmd->ping = true;
	}
	return cmd;
}

/*
 * A command timed out: is the card still alive?  A healthy card answers a
 * NOP promptly however busy its firmware is, so a probe that times out
 * means the card hung.  Under the queue lock.
 */
static void phsm_ping_locked(struct phsm_card *card)
{
	struct phsm_cmd *ping = card->ping;

	if (card->ping_busy)
		return;
	ping->delivered = false;
	ping->timed_out = false;
	ping->notify = false;
	ping->timeout = msecs_to_jiffies(max(card->ready_ms, 2000u));
	reinit_completion(&ping->done);
	if (!phsm_submit_locked(card, ping, PHSM_SUBMIT_RESERVE))
		card->ping_busy = true;
}

static const char *const phsm_cqe_names[] = {
	[PHSM_CQE_SUCCESS] = "success",
	[PHSM_CQE_INVALID_OPCODE] = "invalid opcode",
	[PHSM_CQE_INVALID_FIELD] = "invalid field",
	[PHSM_CQE_INVALID_LENGTH] = "invalid length",
	[PHSM_CQE_BAD_CONTEXT] = "bad context",
	[PHSM_CQE_NO_RESOURCES] = "no resources",
	[PHSM_CQE_DMA_READ] = "DMA read error",
	[PHSM_CQE_DMA_WRITE] = "DMA write error",
	[PHSM_CQE_RESP_OVERFLOW] = "response overflow",
	[PHSM_CQE_ABORTED] = "aborted",
	[PHSM_CQE_INTERNAL] = "internal error",
};

static int phsm_cqe_bad(struct phsm_card *card, struct phsm_cmd *cmd,
			u16 status, u32 len)
{
	atomic64_inc(&card->errors);
	dev_err_ratelimited(&card->dev,
			    "command %u (opcode %u) failed: %s (status %#x, length %u)\n",
			    cmd->cid, cmd->opcode,
			    status < ARRAY_SIZE(phsm_cqe_names) ?
			    phsm_cqe_names[status] : "unknown status",
			    status, len);
	return -EIO;
}

/* The owner's result for a completion; every value is checked. */
static int phsm_cqe_result(struct phsm_card *card, struct phsm_cmd *cmd,
			   u16 status, u32 len, u32 *resp_len)
{
	bool msg = cmd->opcode == PHSM_SQE_MSG;

	*resp_len = 0;
	switch (status) {
	case PHSM_CQE_SUCCESS:
		if (!msg)
			return 0;
		if (len < PHSM_HDR_LEN || len > cmd->resp_size)
			return phsm_cqe_bad(card, cmd, status, len);
		*resp_len = len;
		return 0;
	case PHSM_CQE_RESP_OVERFLOW:
		if (!msg || len <= cmd->resp_size)
			return phsm_cqe_bad(card, cmd, status, len);
		*resp_len = len;
		return -EMSGSIZE;
	case PHSM_CQE_ABORTED:
		return cmd->timed_out ? -ETIMEDOUT : -EIO;
	case PHSM_CQE_BAD_CONTEXT:
		if (cmd->opcode == PHSM_SQE_APP_OPEN)
			return phsm_cqe_bad(card, cmd, status, len);
		return -ESTALE;
	case PHSM_CQE_NO_RESOURCES:
		return cmd->opcode == PHSM_SQE_APP_OPEN ? -EBUSY : -ENOMEM;
	default:
		return phsm_cqe_bad(card, cmd, status, len);
	}
}

static void phsm_handle_cqe(struct phsm_card *card, const struct phsm_cqe *cqe,
			    struct list_head *out)
{
	struct phsm_queue *q = &card->q;
	u16 cid = le16_to_cpu(cqe->cid);
	u16 status = PHSM_CQE_STATUS(le16_to_cpu(cqe->status));
	u32 len = le32_to_cpu(cqe->resp_len);
	struct phsm_cmd *cmd;
	u32 resp_len;
	int error;

	if (le16_to_cpu(cqe->sq_head) >= q->depth) {
		atomic64_inc(&card->errors);
		dev_err_ratelimited(&card->dev, "completion with SQ head %u\n",
				    le16_to_cpu(cqe->sq_head));
	}
	cmd = cid < q->nslots ? q->slots[cid] : NULL;
	if (!cmd) {
		atomic64_inc(&card->errors);
		dev_err_ratelimited(&card->dev,
				    "completion for unknown command id %u dropped\n",
				    cid);
		return;
	}
	error = phsm_cqe_result(card, cmd, status, len, &resp_len);
	phsm_retire(card, cmd, error, resp_len, out);
}

static bool phsm_cqe_pending(struct phsm_queue *q)
{
	u16 status = le16_to_cpu(READ_ONCE(q->cqes[q->cq_head].status));

	return (status & PHSM_CQE_PHASE) == q->phase;
}

/*
 * Consume the new completion entries, under the queue lock.  At most one
 * pass over the ring: the driver never has more commands outstanding, so
 * a device that keeps producing entries cannot hold the lock forever.
 */
static void phsm_process_cq_locked(struct phsm_card *card,
				   struct list_head *out)
{
	struct phsm_queue *q = &card->q;
	u32 seen = 0;

	if (card->state != PHSM_LIVE)
		return;
	while (seen < q->depth && phsm_cqe_pending(q)) {
		struct phsm_cqe cqe;

		/* Read the entry only after its phase tag. */
		dma_rmb();
		memcpy(&cqe, &q->cqes[q->cq_head], sizeof(cqe));
		phsm_handle_cqe(card, &cqe, out);
		if (++q->cq_head == q->depth) {
			q->cq_head = 0;
			q->phase ^= 1;
		}
		seen++;
	}
	if (seen)
		phsm_writel(card, PHSM_REG_CQ_HEAD_DB, q->cq_head);
}

void phsm_process_cq(struct phsm_card *card)
{
	LIST_HEAD(out);

	spin_lock(&card->q.lock);
	phsm_process_cq_locked(card, &out);
	spin_unlock(&card->q.lock);
	phsm_finish(card, &out);
}

/* Report a timeout to the owner and ask the card to abort the command. */
static void phsm_timeout_cmd(struct phsm_card *card, struct phsm_cmd *cmd)
{
	cmd->timed_out = true;
	atomic64_inc(&card->timeouts);
	dev_warn_ratelimited(&card->dev,
			     "command %u (opcode %u) timed out; aborting\n",
			     cmd->cid, cmd->opcode);
	if (phsm_settle(cmd, -ETIMEDOUT, 0))
		phsm_notify(cmd);
	phsm_writel(card, PHSM_REG_ABORT, cmd->cid);
}

/**
 * phsm_watchdog_fn - the timeout ladder
 * @work:	the card's watchdog
 *
 * 1. a completion may have been missed: look at the CQ;
 * 2. a command past its deadline: report -ETIMEDOUT, write its id to
 *    ABORT, and probe the card with a NOP;
 * 3. the probe past its deadline, or CSTS.CFS, or CSTS.RDY lost: reset
 *    the controller (phsm_pci.c);
 * 4. registers reading all ones: the card is gone.
 */
void phsm_watchdog_fn(struct work_struct *work)
{
	struct phsm_card *card = container_of(to_delayed_work(work),
					      struct phsm_card, watchdog);
	struct phsm_queue *q = &card->q;
	unsigned long next = 0;
	bool have_next = false;
	bool expired = false;
	bool hung = false;
	LIST_HEAD(out);
	u32 cid;

	spin_lock(&q->lock);
	card->wd_armed = false;
	if (card->state != PHSM_LIVE || phsm_dev_check(card))
		goto unlock;
	phsm_process_cq_locked(card, &out);
	for (cid = 0; cid < q->nslots; cid++) {
		struct phsm_cmd *cmd = q->slots[cid];

		if (!cmd || cmd->timed_out)
			continue;
		if (time_before(jiffies, cmd->deadline)) {
			if (!have_next || time_before(cmd->deadline, next))
				next = cmd->deadline;
			have_next = true;
		} else if (cmd->ping) {
			cmd->timed_out = true;
			hung = true;
		} else {
			phsm_timeout_cmd(card, cmd);
			expired = true;
		}
	}
	if (expired && !hung)
		phsm_ping_locked(card);
	if (have_next)
		phsm_watchdog_arm(card, next);
unlock:
	spin_unlock(&q->lock);
	phsm_finish(card, &out);
	if (hung) {
		dev_err(&card->dev, "card does not answer\n");
		phsm_schedule_recovery(card);
	}
}

/* Empty rings, for an enable.  The device must not be running. */
void phsm_queue_reset(struct phsm_card *card)
{
	struct phsm_queue *q = &card->q;

	spin_lock(&q->lock);
	memset(q->sqes, 0, q->depth * sizeof(*q->sqes));
	memset(q->cqes, 0, q->depth * sizeof(*q->cqes));
	q->sq_tail = 0;
	q->cq_head = 0;
	q->phase = 1;
	spin_unlock(&q->lock);
}

/**
 * phsm_fail_all - end every command in the ring with @error
 * @card:	the card; the device no longer does DMA (CSTS.RDY is 0, or
 *		bus mastering is off)
 * @error:	what their owners are told, unless they were already
 */
void phsm_fail_all(struct phsm_card *card, int error)
{
	struct phsm_queue *q = &card->q;
	LIST_HEAD(out);
	u32 cid;

	spin_lock(&q->lock);
	for (cid = 0; cid < q->nslots; cid++)
		if (q->slots[cid])
			phsm_retire(card, q->slots[cid], error, 0, &out);
	spin_unlock(&q->lock);
	phsm_finish(card, &out);
	wake_up_all(&card->slot_wq);
}

/* Wake readers and pollers of every file: the card changed state. */
void phsm_wake_files(struct phsm_card *card)
{
	struct phsm_file *file;

	spin_lock(&card->files_lock);
	list_for_each_entry(file, &card->files, node)
		wake_up_interruptible_all(&file->wq);
	spin_unlock(&card->files_lock);
	wake_up_all(&card->slot_wq);
}
