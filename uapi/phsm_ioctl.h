/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * /dev/phsmN: the character device of a phsm card (driver phsm.ko).
 *
 * Every open file is one application context on the card, as one socket
 * connection to phsm-fw is: its sessions, logins and operations are
 * dropped when the last descriptor of the file is closed.  Requests and
 * responses are phsm_proto.h messages, passed through unchanged except
 * for the header's app_ctx, which the driver sets to the file's context.
 *
 * Commands are sent either synchronously (PHSM_IOCTL_SUBMIT: one command,
 * the caller waits) or asynchronously (PHSM_IOCTL_SUBMIT_ASYNC: returns at
 * once; completions are read() from the file as struct phsm_completion
 * records, and poll() says when there are some).  Several threads may use
 * one file at once.
 *
 * Every structure has the same layout on 32- and 64-bit userspace: fixed
 * width types, pointers as __u64, explicit padding, sizes multiple of 8.
 * Reserved fields and unknown flags must be zero or the call fails with
 * EINVAL, so that they can be given a meaning later.
 *
 * Documentation/phsm/ioctl.rst describes the interface in prose.
 */
#ifndef _UAPI_PHSM_IOCTL_H
#define _UAPI_PHSM_IOCTL_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Free in Documentation/userspace-api/ioctl/ioctl-number.rst (Linux 6.1). */
#define PHSM_IOC_MAGIC		0xBE

/*
 * Raised with every addition to this interface; PHSM_IOCTL_INFO reports
 * the driver's.  Additions are new ioctls and new PHSM_FEAT_* bits.
 */
#define PHSM_ABI_VERSION	1

/* Features of the driver, in phsm_ioctl_info.features. */
#define PHSM_FEAT_ASYNC		(1u << 0)	/* SUBMIT_ASYNC, read() and poll() */

/**
 * struct phsm_ioctl_info - the card and the driver, for %PHSM_IOCTL_INFO
 * @abi_version:	%PHSM_ABI_VERSION of the driver
 * @features:		PHSM_FEAT_* bits
 * @dev_version:	the device's interface version, PHSM_DEV_VERSION()
 * @proto_min:		lowest PHSM_PROTO_VERSION the card accepts
 * @proto_max:		highest PHSM_PROTO_VERSION the card accepts
 * @max_msg:		largest request and largest response, in bytes, that
 *			the driver passes (header included)
 * @queue_depth:	commands the card has in flight at once, for all files
 * @max_async:		asynchronous commands one file may have submitted and
 *			not yet read
 * @max_contexts:	application contexts (open files) the card holds
 * @partitions:		partitions (PKCS#11 tokens) on the card
 * @serial:		card serial number, blank-padded, not NUL-terminated
 * @model:		card model, blank-padded, not NUL-terminated
 * @hw_major:		hardware version
 * @hw_minor:		hardware version
 * @fw_major:		firmware version
 * @fw_minor:		firmware version
 * @reserved0:		zero
 * @reserved1:		zero
 *
 * Everything is written by the driver; nothing is read.
 */
struct phsm_ioctl_info {
	__u32 abi_version;
	__u32 features;
	__u32 dev_version;
	__u32 proto_min;
	__u32 proto_max;
	__u32 max_msg;
	__u32 queue_depth;
	__u32 max_async;
	__u32 max_contexts;
	__u32 partitions;
	__u8 serial[16];
	__u8 model[16];
	__u8 hw_major;
	__u8 hw_minor;
	__u8 fw_major;
	__u8 fw_minor;
	__u32 reserved0;
	__u64 reserved1[4];
};

/**
 * struct phsm_ioctl_submit - one command, for %PHSM_IOCTL_SUBMIT
 * @req_ptr:	in: address of the request message
 * @resp_ptr:	in: address of the buffer for the response message
 * @req_len:	in: bytes at @req_ptr, 40 .. max_msg
 * @resp_cap:	in: bytes available at @resp_ptr, at least 40
 * @resp_len:	out: bytes of response written at @resp_ptr; with EMSGSIZE,
 *		the bytes the response needed (and nothing is written)
 * @flags:	in: none defined, must be zero
 * @timeout_ms:	in: give up after this long; 0: the driver's default
 * @reserved0:	in: must be zero
 * @reserved1:	in: must be zero
 */
struct phsm_ioctl_submit {
	__u64 req_ptr;
	__u64 resp_ptr;
	__u32 req_len;
	__u32 resp_cap;
	__u32 resp_len;
	__u32 flags;
	__u32 timeout_ms;
	__u32 reserved0;
	__u64 reserved1[2];
};

/**
 * struct phsm_ioctl_submit_async - one command, for %PHSM_IOCTL_SUBMIT_ASYNC
 * @req_ptr:	in: address of the request message; copied before the call
 *		returns, so the buffer may be reused at once
 * @resp_ptr:	in: address the response will be copied to when its
 *		completion is read; must stay valid until then
 * @user_data:	in: any value, given back in the completion
 * @id:		out: the driver's id for the command, unique in this file
 * @req_len:	in: bytes at @req_ptr, 40 .. max_msg
 * @resp_cap:	in: bytes available at @resp_ptr, at least 40
 * @flags:	in: none defined, must be zero
 * @timeout_ms:	in: give up after this long; 0: the driver's default
 * @reserved:	in: must be zero
 */
struct phsm_ioctl_submit_async {
	__u64 req_ptr;
	__u64 resp_ptr;
	__u64 user_data;
	__u64 id;
	__u32 req_len;
	__u32 resp_cap;
	__u32 flags;
	__u32 timeout_ms;
	__u64 reserved[2];
};

/**
 * struct phsm_completion - what read() returns, one per asynchronous command
 * @id:		the command's id from %PHSM_IOCTL_SUBMIT_ASYNC
 * @user_data:	the caller's value from %PHSM_IOCTL_SUBMIT_ASYNC
 * @error:	0, or a negative errno: the command failed as a
 *		%PHSM_IOCTL_SUBMIT would have with that error, or -EFAULT:
 *		the response could not be copied to @resp_ptr
 * @resp_len:	bytes of response written at the command's @resp_ptr; with
 *		-EMSGSIZE, the bytes it needed
 * @reserved:	zero
 */
struct phsm_completion {
	__u64 id;
	__u64 user_data;
	__s32 error;
	__u32 resp_len;
	__u64 reserved;
};

#define PHSM_IOCTL_INFO		_IOR(PHSM_IOC_MAGIC, 0x00, struct phsm_ioctl_info)
#define PHSM_IOCTL_SUBMIT	_IOWR(PHSM_IOC_MAGIC, 0x01, struct phsm_ioctl_submit)
#define PHSM_IOCTL_SUBMIT_ASYNC	_IOWR(PHSM_IOC_MAGIC, 0x02, struct phsm_ioctl_submit_async)

#endif /* _UAPI_PHSM_IOCTL_H */
