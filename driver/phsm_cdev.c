// SPDX-License-Identifier: GPL-2.0
/*
 * phsm.ko: /dev/phsmN, the ABI of uapi/phsm_ioctl.h.
 *
 * Every open file is one application context on the card.  The driver
 * writes that context into every request it passes on, so that no file
 * can act in another's name, and closes it when the file is released.
 */
#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/minmax.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "phsm.h"

static void phsm_file_free(struct kref *kref)
{
	struct phsm_file *file = container_of(kref, struct phsm_file, kref);

	put_device(&file->card->dev);
	kfree(file);
}

void phsm_file_put(struct phsm_file *file)
{
	kref_put(&file->kref, phsm_file_free);
}

/**
 * phsm_file_post - queue a finished asynchronous command for read()
 * @cmd:	the command; its owner reference moves to the file's list, or
 *		is dropped if the file was released
 *
 * Under the queue lock the command still holds its slot, so dropping the
 * owner reference there never frees it.
 */
void phsm_file_post(struct phsm_cmd *cmd)
{
	struct phsm_file *file = cmd->file;

	spin_lock(&file->lock);
	if (file->released) {
		spin_unlock(&file->lock);
		phsm_cmd_put(cmd);
		return;
	}
	list_add_tail(&cmd->node, &file->done);
	spin_unlock(&file->lock);
	wake_up_interruptible(&file->wq);
}

static bool phsm_card_gone(struct phsm_card *card)
{
	enum phsm_state state = READ_ONCE(card->state);

	return state == PHSM_REMOVED || state == PHSM_DEAD;
}

static bool phsm_file_stale(struct phsm_file *file)
{
	return file->ctx && file->gen != READ_ONCE(file->card->gen);
}

static int phsm_open(struct inode *inode, struct file *filp)
{
	struct phsm_card *card = container_of(inode->i_cdev, struct phsm_card,
					      cdev);
	struct phsm_file *file;
	u64 ctx;
	int ret;

	file = kzalloc(sizeof(*file), GFP_KERNEL);
	if (!file)
		return -ENOMEM;
	kref_init(&file->kref);
	get_device(&card->dev);
	file->card = card;
	spin_lock_init(&file->lock);
	INIT_LIST_HEAD(&file->done);
	INIT_LIST_HEAD(&file->node);
	init_waitqueue_head(&file->wq);
	mutex_init(&file->read_lock);
	file->next_id = 1;

	ret = stream_open(inode, filp);
	if (ret)
		goto fail;
	if (filp->f_mode & FMODE_WRITE) {
		/* Sets file->ctx and file->gen when the entry is queued. */
		ret = phsm_ctx_open(card, file, &ctx);
		if (ret == -ETIMEDOUT || ret == -ESTALE)
			ret = -EIO;
		if (ret)
			goto fail;
	} else if (phsm_card_gone(card)) {
		ret = -ENODEV;
		goto fail;
	}

	spin_lock(&card->files_lock);
	list_add_tail(&file->node, &card->files);
	spin_unlock(&card->files_lock);
	filp->private_data = file;
	return 0;

fail:
	phsm_file_put(file);
	return ret;
}

static int phsm_release(struct inode *inode, struct file *filp)
{
	struct phsm_file *file = filp->private_data;
	struct phsm_card *card = file->card;
	struct phsm_cmd *cmd, *tmp;
	LIST_HEAD(drop);

	spin_lock(&card->files_lock);
	list_del(&file->node);
	spin_unlock(&card->files_lock);

	/*
	 * The card drops the context's sessions and logins, and completes
	 * the close only after the context's last command: when this
	 * returns, the card touches none of the file's buffers any more.
	 * A stale or removed card has nothing left to close.
	 */
	if (file->ctx && !phsm_file_stale(file) && !phsm_card_gone(card))
		phsm_ctx_close(card, file, file->ctx);

	spin_lock(&file->lock);
	file->released = true;
	list_splice_init(&file->done, &drop);
	spin_unlock(&file->lock);
	list_for_each_entry_safe(cmd, tmp, &drop, node) {
		list_del(&cmd->node);
		phsm_cmd_put(cmd);
	}
	phsm_file_put(file);
	return 0;
}

/* Errors that end every call on the file except PHSM_IOCTL_INFO. */
static int phsm_file_usable(struct phsm_file *file)
{
	if (phsm_card_gone(file->card))
		return -ENODEV;
	if (phsm_file_stale(file))
		return -ESTALE;
	return 0;
}

static long phsm_ioctl_info(struct phsm_file *file, void __user *argp)
{
	struct phsm_card *card = file->card;
	struct phsm_ioctl_info info;

	if (phsm_card_gone(card))
		return -ENODEV;
	memset(&info, 0, sizeof(info));
	info.abi_version = PHSM_ABI_VERSION;
	info.features = PHSM_FEAT_ASYNC;
	info.dev_version = card->dev_version;
	info.proto_min = PHSM_REG_PROTO_MIN(card->proto);
	info.proto_max = PHSM_REG_PROTO_MAX(card->proto);
	info.max_msg = card->max_msg;
	info.queue_depth = card->q.nslots - 1;
	info.max_async = PHSM_DRV_MAX_ASYNC;
	info.max_contexts = card->max_ctx - 1;
	info.partitions = le32_to_cpu(card->info.partitions);
	memcpy(info.serial, card->info.serial, sizeof(info.serial));
	memcpy(info.model, card->info.model, sizeof(info.model));
	info.hw_major = card->info.hw_major;
	info.hw_minor = card->info.hw_minor;
	info.fw_major = card->info.fw_major;
	info.fw_minor = card->info.fw_minor;
	if (copy_to_user(argp, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

/* Checks common to both submissions, in the order ioctl.rst gives. */
static int phsm_check_submit(struct phsm_file *file, struct file *filp,
			     u32 req_len, u32 resp_cap, u64 resp_ptr)
{
	int ret;

	if (req_len < PHSM_HDR_LEN || resp_cap < PHSM_HDR_LEN)
		return -EINVAL;
	if (req_len > file->card->max_msg)
		return -E2BIG;
	if (!(filp->f_mode & FMODE_WRITE) || !file->ctx)
		return -EBADF;
	ret = phsm_file_usable(file);
	if (ret)
		return ret;
	if (!access_ok(u64_to_user_ptr(resp_ptr),
		       min(resp_cap, file->card->max_msg)))
		return -EFAULT;
	return 0;
}

/* A command with the caller's request copied in. */
static struct phsm_cmd *phsm_prepare(struct phsm_file *file, u64 req_ptr,
				     u32 req_len, u32 resp_cap,
				     u32 timeout_ms)
{
	u32 resp_size = min(resp_cap, file->card->max_msg);
	struct phsm_cmd *cmd;

	cmd = phsm_cmd_alloc(file, PHSM_SQE_MSG, req_len, resp_size);
	if (!cmd)
		return ERR_PTR(-ENOMEM);
	if (copy_from_user(cmd->req, u64_to_user_ptr(req_ptr), req_len)) {
		phsm_cmd_put(cmd);
		return ERR_PTR(-EFAULT);
	}
	if (timeout_ms)
		cmd->timeout = msecs_to_jiffies(timeout_ms);
	return cmd;
}

static long phsm_ioctl_submit(struct phsm_file *file, struct file *filp,
			      void __user *argp)
{
	struct phsm_ioctl_submit __user *uarg = argp;
	struct phsm_ioctl_submit s;
	struct phsm_cmd *cmd;
	int ret;

	if (phsm_card_gone(file->card))
		return -ENODEV;
	if (copy_from_user(&s, uarg, sizeof(s)))
		return -EFAULT;
	if (s.flags || s.reserved0 || s.reserved1[0] || s.reserved1[1])
		return -EINVAL;
	ret = phsm_check_submit(file, filp, s.req_len, s.resp_cap,
				s.resp_ptr);
	if (ret)
		return ret;
	cmd = phsm_prepare(file, s.req_ptr, s.req_len, s.resp_cap,
			   s.timeout_ms);
	if (IS_ERR(cmd))
		return PTR_ERR(cmd);

	/* Until the request is on the card, a signal may stop the call. */
	ret = phsm_submit(file->card, cmd, 0);
	if (ret)
		goto out;
	/* From then on it is never restarted: that would run it twice. */
	ret = phsm_wait(cmd, true);
	if (!ret && copy_to_user(u64_to_user_ptr(s.resp_ptr), cmd->resp,
				 cmd->resp_len))
		ret = -EFAULT;
	if ((!ret || ret == -EMSGSIZE) && put_user(cmd->resp_len,
						   &uarg->resp_len))
		ret = -EFAULT;
out:
	phsm_cmd_put(cmd);
	return ret;
}

static void phsm_async_unreserve(struct phsm_file *file)
{
	spin_lock(&file->lock);
	file->async--;
	spin_unlock(&file->lock);
	wake_up_interruptible(&file->wq);
}

static long phsm_ioctl_submit_async(struct phsm_file *file, struct file *filp,
				    void __user *argp)
{
	struct phsm_ioctl_submit_async __user *uarg = argp;
	struct phsm_ioctl_submit_async a;
	unsigned int flags = 0;
	struct phsm_cmd *cmd;
	u64 id;
	int ret;

	if (phsm_card_gone(file->card))
		return -ENODEV;
	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if (a.flags || a.reserved[0] || a.reserved[1])
		return -EINVAL;
	ret = phsm_check_submit(file, filp, a.req_len, a.resp_cap,
				a.resp_ptr);
	if (ret)
		return ret;

	spin_lock(&file->lock);
	if (file->async >= PHSM_DRV_MAX_ASYNC) {
		spin_unlock(&file->lock);
		return -EAGAIN;
	}
	file->async++;
	id = file->next_id++;
	spin_unlock(&file->lock);

	cmd = phsm_prepare(file, a.req_ptr, a.req_len, a.resp_cap,
			   a.timeout_ms);
	if (IS_ERR(cmd)) {
		ret = PTR_ERR(cmd);
		goto unreserve;
	}
	cmd->async = true;
	cmd->id = id;
	cmd->user_data = a.user_data;
	cmd->resp_ptr = a.resp_ptr;
	if (put_user(id, &uarg->id)) {
		ret = -EFAULT;
		goto put;
	}
	if (filp->f_flags & O_NONBLOCK)
		flags |= PHSM_SUBMIT_NONBLOCK;
	ret = phsm_submit(file->card, cmd, flags);
	if (ret)
		goto put;
	/* The owner reference now travels with the command to read(). */
	return 0;

put:
	phsm_cmd_put(cmd);
unreserve:
	phsm_async_unreserve(file);
	return ret;
}

static long phsm_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct phsm_file *file = filp->private_data;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case PHSM_IOCTL_INFO:
		return phsm_ioctl_info(file, argp);
	case PHSM_IOCTL_SUBMIT:
		return phsm_ioctl_submit(file, filp, argp);
	case PHSM_IOCTL_SUBMIT_ASYNC:
		return phsm_ioctl_submit_async(file, filp, argp);
	default:
		return -ENOTTY;
	}
}

static struct phsm_cmd *phsm_first_done(struct phsm_file *file)
{
	struct phsm_cmd *cmd;

	spin_lock(&file->lock);
	cmd = list_first_entry_or_null(&file->done, struct phsm_cmd, node);
	spin_unlock(&file->lock);
	return cmd;
}

static bool phsm_readable(struct phsm_file *file)
{
	return phsm_first_done(file) || phsm_file_usable(file);
}

/*
 * Copy one record and its response out.  The record is consumed only if
 * it reached the caller's buffer.
 */
static int phsm_read_one(struct phsm_file *file, struct phsm_cmd *cmd,
			 char __user *buf)
{
	struct phsm_completion rec;

	memset(&rec, 0, sizeof(rec));
	rec.id = cmd->id;
	rec.user_data = cmd->user_data;
	rec.error = cmd->error;
	rec.resp_len = cmd->resp_len;
	if (!rec.error && copy_to_user(u64_to_user_ptr(cmd->resp_ptr),
				       cmd->resp, rec.resp_len)) {
		rec.error = -EFAULT;
		rec.resp_len = 0;
	}
	if (copy_to_user(buf, &rec, sizeof(rec)))
		return -EFAULT;

	spin_lock(&file->lock);
	list_del(&cmd->node);
	file->async--;
	spin_unlock(&file->lock);
	phsm_cmd_put(cmd);
	return 0;
}

static ssize_t phsm_read(struct file *filp, char __user *buf, size_t count,
			 loff_t *ppos)
{
	struct phsm_file *file = filp->private_data;
	const size_t rec = sizeof(struct phsm_completion);
	struct phsm_cmd *cmd;
	size_t done = 0;
	int ret;

	if (count < rec)
		return -EINVAL;
	if (mutex_lock_interruptible(&file->read_lock))
		return -ERESTARTSYS;
	while (!phsm_first_done(file)) {
		ret = phsm_file_usable(file);
		if (!ret && (filp->f_flags & O_NONBLOCK))
			ret = -EAGAIN;
		if (ret)
			goto unlock;
		mutex_unlock(&file->read_lock);
		ret = wait_event_interruptible(file->wq, phsm_readable(file));
		if (ret)
			return ret;
		if (mutex_lock_interruptible(&file->read_lock))
			return -ERESTARTSYS;
	}

	ret = 0;
	while (count - done >= rec) {
		cmd = phsm_first_done(file);
		if (!cmd)
			break;
		ret = phsm_read_one(file, cmd, buf + done);
		if (ret)
			break;
		done += rec;
	}
	if (done)
		wake_up_interruptible(&file->wq);
unlock:
	mutex_unlock(&file->read_lock);
	return done ? done : ret;
}

static __poll_t phsm_poll(struct file *filp, poll_table *wait)
{
	struct phsm_file *file = filp->private_data;
	__poll_t mask = 0;

	poll_wait(filp, &file->wq, wait);
	spin_lock(&file->lock);
	if (!list_empty(&file->done))
		mask |= EPOLLIN | EPOLLRDNORM;
	if (file->async < PHSM_DRV_MAX_ASYNC)
		mask |= EPOLLOUT | EPOLLWRNORM;
	spin_unlock(&file->lock);
	if (phsm_file_usable(file))
		mask |= EPOLLERR | EPOLLHUP;
	return mask;
}

const struct file_operations phsm_fops = {
	.owner = THIS_MODULE,
	.open = phsm_open,
	.release = phsm_release,
	.read = phsm_read,
	.poll = phsm_poll,
	.unlocked_ioctl = phsm_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};
