// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The phsm driver when the card misbehaves: a card that stops answering
 * (the timeout path) and a card that is reset under the driver (PCI
 * function reset), each followed by recovery.
 *
 * The card is $PHSM_DEV1 (/dev/phsm1).  Stalling it needs the VM host
 * (tests/vm/run-vm.sh), which sets the QEMU device's "stall" property on
 * request; without one these tests skip.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../kselftest_harness.h"
#include "phsm_lib.h"

#define NEED_HOST() do { \
	if (!phsm_host_available()) \
		SKIP(return, "no VM host to drive the card (PHSM_VM_HOST)"); \
} while (0)

#define SO_PIN		"phsm-selftest-so"
#define LABEL		"selftest reset"

FIXTURE(card1) {
	int fd;
	char name[64];
	char pci[64];
	long long saved_timeout;
	bool stalled;
};

FIXTURE_SETUP(card1)
{
	self->fd = -1;
	self->saved_timeout = -1;
	/* The tests skip (a skip in a 6.1 setup would not stop them). */
	if (!phsm_host_available())
		return;
	self->fd = phsm_open(phsm_dev1());
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", phsm_dev1(),
				      strerror(-self->fd));
	snprintf(self->name, sizeof(self->name), "%s", phsm_name(phsm_dev1()));
	ASSERT_EQ(0, phsm_pci_addr(self->name, self->pci, sizeof(self->pci)));
	self->saved_timeout = phsm_param_timeout();
	ASSERT_LT(0, self->saved_timeout);
	ASSERT_EQ(0, phsm_nop(self->fd, 1, 0));
}

FIXTURE_TEARDOWN(card1)
{
	if (self->stalled)
		phsm_host("set %s stall false", phsm_card1());
	if (self->saved_timeout > 0)
		EXPECT_EQ(0, phsm_set_param_timeout(self->saved_timeout));
	if (self->fd >= 0)
		EXPECT_EQ(0, close(self->fd));
}

/*
 * Send NOPs until one works, reopening the file if a reset has taken its
 * context (ESTALE).  Returns 0, or the last error after @budget_ms.
 */
static int until_nop_works(int *fd, const char *path, unsigned int budget_ms,
			   bool *reopened)
{
	uint64_t end = phsm_now_ms() + budget_ms;
	int ret;

	for (;;) {
		ret = *fd >= 0 ? phsm_nop(*fd, 7, 2000) : *fd;
		if (ret == 0 || phsm_now_ms() > end)
			return ret;
		if (ret == -ESTALE || *fd < 0) {
			if (*fd >= 0)
				close(*fd);
			*fd = phsm_open(path);
			*reopened = true;
		}
		phsm_sleep_ms(100);
	}
}

/*
 * The card stops answering: a command gives up after the module's
 * timeout_ms with ETIMEDOUT and is counted; an async command gets exactly
 * one completion; once the card answers again, so does the driver.
 */
TEST_F_TIMEOUT(card1, timeout_then_recovery, 240)
{
	long long timeouts = phsm_attr_num(self->name, "timeouts");
	uint8_t resp[64];
	struct tmsg nop = msg_plain(PHSM_OP_NOP, 0x7e57);
	struct pollfd pfd = { .events = POLLIN };
	struct phsm_completion c[2];
	uint64_t t0, took = 0, end;
	bool reopened = false;
	char state[32];
	int ret = 0;
	ssize_t r;

	NEED_HOST();

	ASSERT_LE(0, timeouts);
	ASSERT_EQ(0, phsm_set_param_timeout(1000));
	ASSERT_EQ(1000, phsm_param_timeout());

	phsm_host("set %s stall true", phsm_card1());
	self->stalled = true;
	/* Until the host has acted, commands still complete. */
	for (end = phsm_now_ms() + 30000; phsm_now_ms() < end;) {
		t0 = phsm_now_ms();
		ret = phsm_nop(self->fd, 0x100, 0);
		took = phsm_now_ms() - t0;
		if (ret)
			break;
		phsm_sleep_ms(50);
	}
	ASSERT_EQ(-ETIMEDOUT, ret) TH_LOG("%s", strerror(-ret));
	/* The module's default applied: about a second. */
	EXPECT_LE(900, took);
	EXPECT_GE(8000, took);
	EXPECT_LT(timeouts, phsm_attr_num(self->name, "timeouts"));

	/*
	 * An asynchronous command with its own short timeout ends with
	 * exactly one completion: a timeout, or -EIO/-ESTALE if the driver
	 * chose to reset the silent card meanwhile.
	 */
	ret = phsm_submit_async(self->fd, nop.p, nop.len, resp, sizeof(resp),
				99, 300, NULL);
	if (ret == 0) {
		pfd.fd = self->fd;
		ASSERT_EQ(1, poll(&pfd, 1, 30000));
		r = read(self->fd, c, sizeof(c));
		ASSERT_EQ(sizeof(c[0]), r);
		EXPECT_EQ(99, c[0].user_data);
		EXPECT_TRUE(c[0].error == -ETIMEDOUT || c[0].error == -EIO ||
			    c[0].error == -ESTALE)
			TH_LOG("completion error %d", c[0].error);
	} else {
		/* Only a reset since the first timeout excuses a refusal. */
		EXPECT_EQ(-ESTALE, ret);
	}

	phsm_host("set %s stall false", phsm_card1());
	self->stalled = false;
	ret = until_nop_works(&self->fd, phsm_dev1(), 60000, &reopened);
	ASSERT_EQ(0, ret) TH_LOG("no recovery: %s", strerror(-ret));
	ASSERT_EQ(0, phsm_attr(self->name, "state", state, sizeof(state)));
	EXPECT_STREQ("live", state);
	TH_LOG("recovered%s", reopened ? " after a reset" : " without a reset");
	tmsg_free(&nop);
}

static int pci_reset(const char *pci)
{
	char path[PATH_MAX];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/reset", pci);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, "1", 1) != 1)
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * A function reset of the card: the old file's context is gone (ESTALE,
 * with INFO still working and poll reporting the loss), a new file works,
 * and the firmware's state (an initialised token) survives, while the
 * sessions of the old context do not.
 */
TEST_F_TIMEOUT(card1, reset_recovery, 240)
{
	struct phsm_ioctl_info info;
	struct phsm_token_info ti;
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN };
	uint64_t session = 0;
	bool reopened = false;
	char state[32];
	int fd2 = -1, ret;

	NEED_HOST();

	ret = phsm_init_token(self->fd, 0, SO_PIN, LABEL);
	ASSERT_EQ(0, ret) TH_LOG("INIT_TOKEN: %d", ret);
	ASSERT_EQ(0, phsm_open_session(self->fd, 0, &session));
	ASSERT_EQ(0, phsm_token_info(self->fd, 0, &ti));
	ASSERT_EQ(1, le64toh(ti.session_count));

	ret = pci_reset(self->pci);
	ASSERT_EQ(0, ret) TH_LOG("reset %s: %s", self->pci, strerror(-ret));

	/* A new file works once the driver has brought the card back. */
	ret = until_nop_works(&fd2, phsm_dev1(), 60000, &reopened);
	ASSERT_EQ(0, ret) TH_LOG("no recovery: %s", strerror(-ret));
	ASSERT_EQ(0, phsm_attr(self->name, "state", state, sizeof(state)));
	EXPECT_STREQ("live", state);

	/* The old one lost its context. */
	EXPECT_EQ(-ESTALE, phsm_nop(self->fd, 2, 0));
	EXPECT_EQ(0, phsm_info(self->fd, &info));
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_TRUE(pfd.revents & (POLLERR | POLLHUP));

	/* The firmware kept the token, and dropped the old sessions. */
	ASSERT_EQ(0, phsm_token_info(fd2, 0, &ti));
	EXPECT_TRUE(le64toh(ti.flags) & T_CKF_TOKEN_INITIALIZED);
	EXPECT_EQ(0, memcmp(ti.label, LABEL, strlen(LABEL)));
	EXPECT_EQ(0, le64toh(ti.session_count));
	EXPECT_EQ(T_CKR_SESSION_HANDLE_INVALID, phsm_session_rv(fd2, session));
	EXPECT_EQ(0, phsm_init_token(fd2, 0, SO_PIN, LABEL));
	EXPECT_EQ(0, close(fd2));
}

TEST_HARNESS_MAIN
