/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Helpers shared by the phsm selftests: messages built with the protocol
 * codec (uapi/codec), the ioctls of uapi/phsm_ioctl.h, the driver's sysfs
 * attributes, and requests to the VM host.
 *
 * Environment:
 *   PHSM_DEV0     the card the non-destructive tests use (/dev/phsm0)
 *   PHSM_DEV1     the card that is stalled, reset and removed (/dev/phsm1)
 *   PHSM_CARD1    its QEMU device id, for host requests (card1)
 *   PHSM_VM_HOST  set when a host answers "PHSM-VM: host" requests on the
 *                 console (tests/vm/run-vm.sh); tests that need one skip
 *                 without it
 */
#ifndef PHSM_SELFTEST_LIB_H
#define PHSM_SELFTEST_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "phsm_ioctl.h"
#include "phsm_proto.h"
#include "codec/phsm_codec.h"

#define PHSM_HDR_LEN	((uint32_t)sizeof(struct phsm_msg_hdr))

/* PKCS#11 values the tests need (the card speaks PKCS#11 underneath). */
#define T_CKR_OK			0x000UL
#define T_CKR_SESSION_HANDLE_INVALID	0x0B3UL
#define T_CKF_RW_SESSION		0x002UL
#define T_CKF_SERIAL_SESSION		0x004UL
#define T_CKF_TOKEN_INITIALIZED		0x400UL

/* A built message: bytes and length, malloc'ed. */
struct tmsg {
	uint8_t *p;
	uint32_t len;
};

const char *phsm_dev0(void);
const char *phsm_dev1(void);
const char *phsm_card1(void);

/* open(path, O_RDWR | O_CLOEXEC); -errno on failure. */
int phsm_open(const char *path);

/* A request without fields (NOP, GET_CARD_INFO, APP_CLOSE). */
struct tmsg msg_plain(uint16_t opcode, uint32_t tag);
/* GET_TOKEN_INFO / OPEN_SESSION / INIT_TOKEN / GET_SESSION_INFO. */
struct tmsg msg_token_info(uint32_t tag, uint64_t part);
struct tmsg msg_open_session(uint32_t tag, uint64_t part, uint64_t flags);
struct tmsg msg_init_token(uint32_t tag, uint64_t part, const char *so_pin,
			   const char *label);
struct tmsg msg_session_info(uint32_t tag, uint64_t session);
void tmsg_free(struct tmsg *m);

/*
 * PHSM_IOCTL_SUBMIT: 0 or -errno; *resp_len gets the submit's resp_len
 * (also set on -EMSGSIZE).
 */
int phsm_submit(int fd, const void *req, uint32_t req_len, void *resp,
		uint32_t resp_cap, uint32_t timeout_ms, uint32_t *resp_len);
/* PHSM_IOCTL_SUBMIT_ASYNC: 0 or -errno; *id gets the driver's id. */
int phsm_submit_async(int fd, const void *req, uint32_t req_len, void *resp,
		      uint32_t resp_cap, uint64_t user_data, uint32_t timeout_ms,
		      uint64_t *id);
/* PHSM_IOCTL_INFO: 0 or -errno. */
int phsm_info(int fd, struct phsm_ioctl_info *info);

/*
 * Check a response: well framed, the flags say response, the opcode and
 * tag are the request's.  Returns the PHSM_ST_* of the header (or of the
 * framing if that is bad: then @m is not filled) and fills @m.
 */
uint32_t phsm_check_resp(const void *resp, uint32_t len, uint16_t opcode,
			 uint32_t tag, struct phsm_msg *m);

/*
 * One command, synchronously, with a response buffer of max_msg bytes:
 * 0 with *m describing the response (in *resp, to be freed), or -errno
 * from the ioctl, or -EPROTO if the response does not match the request
 * (wrong opcode/tag/flags, bad framing).
 */
int phsm_call(int fd, const struct tmsg *req, uint32_t timeout_ms,
	      uint8_t **resp, struct phsm_msg *m);
/* A NOP round trip: 0, -errno, or -EPROTO for a bad or failed answer. */
int phsm_nop(int fd, uint32_t tag, uint32_t timeout_ms);
/* GET_TOKEN_INFO of @part; 0 or as phsm_call, -EBADMSG if rv != OK. */
int phsm_token_info(int fd, uint64_t part, struct phsm_token_info *ti);

/*
 * INIT_TOKEN, OPEN_SESSION (serial, read-only): 0, -errno as phsm_call,
 * or the CK_RV of a failed operation (positive).
 */
int phsm_init_token(int fd, uint64_t part, const char *so_pin,
		    const char *label);
int phsm_open_session(int fd, uint64_t part, uint64_t *session);
/* The CK_RV of GET_SESSION_INFO on @session; ~0 if the call failed. */
uint64_t phsm_session_rv(int fd, uint64_t session);

/* The class device name of an open path ("phsm1" for /dev/phsm1). */
const char *phsm_name(const char *path);
/* Read /sys/class/phsm/NAME/ATTR into buf (newline stripped); 0 or -errno. */
int phsm_attr(const char *name, const char *attr, char *buf, size_t size);
/* The same as an unsigned number; -1 on error. */
long long phsm_attr_num(const char *name, const char *attr);
/* The PCI address of NAME's device ("0000:01:00.0"); 0 or -errno. */
int phsm_pci_addr(const char *name, char *buf, size_t size);
/* The class device currently bound to PCI address @addr; 0 or -ENOENT. */
int phsm_name_of_pci(const char *addr, char *name, size_t size);

/* Module parameter timeout_ms: read (-1 on error) and write (0/-errno). */
long long phsm_param_timeout(void);
int phsm_set_param_timeout(long long ms);

/* Whether a VM host answers requests. */
bool phsm_host_available(void);
/* Ask the host to do something: a "PHSM-VM: host ..." console line. */
void phsm_host(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t phsm_now_ms(void);
void phsm_sleep_ms(unsigned int ms);

/*
 * The kernel log lines that mean a kernel bug (BUG:, WARNING:, Oops,
 * general protection fault, Call Trace, ...), as one malloc'ed string;
 * NULL when there are none.  *err is set to -errno if the log cannot be
 * read.
 */
char *phsm_kernel_bugs(int *err);

#endif /* PHSM_SELFTEST_LIB_H */
