// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The phsm card going away under open files: an orderly hot-unplug (QMP
 * device_del, the guest's pciehp removes the device) and a surprise
 * removal (the QEMU device's "surprise-removed" knob: registers read all
 * ones, nothing answers).  Calls then fail with ENODEV, close works, and
 * nothing oopses (phsm_health_test checks the log afterwards).
 *
 * The card is the one at the PCI address of $PHSM_DEV1 (/dev/phsm1) when
 * the first test starts; it is unplugged, plugged back (device_add) and
 * surprise-removed.  Needs the VM host (tests/vm/run-vm.sh); without one
 * these tests skip.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../kselftest_harness.h"
#include "phsm_lib.h"

#define NEED_HOST() do { \
	if (!phsm_host_available()) \
		SKIP(return, "no VM host to unplug the card (PHSM_VM_HOST)"); \
} while (0)

/* Where the first test leaves the card's PCI address for the next ones. */
#define PCI_NOTE	"/tmp/phsm-selftest-card1-pci"

static bool pci_present(const char *pci)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", pci);
	return stat(path, &st) == 0;
}

/* Wait until @pci is (or is not) on the PCI bus; false after @ms. */
static bool wait_pci(const char *pci, bool present, unsigned int ms)
{
	uint64_t end = phsm_now_ms() + ms;

	while (pci_present(pci) != present) {
		if (phsm_now_ms() > end)
			return false;
		phsm_sleep_ms(100);
	}
	return true;
}

/* Wait until a phsm device is bound to @pci; its name in @name. */
static bool wait_bound(const char *pci, char *name, size_t size,
		       unsigned int ms)
{
	uint64_t end = phsm_now_ms() + ms;
	char path[PATH_MAX];
	struct stat st;

	for (;;) {
		if (phsm_name_of_pci(pci, name, size) == 0) {
			snprintf(path, sizeof(path), "/dev/%s", name);
			if (stat(path, &st) == 0)
				return true;
		}
		if (phsm_now_ms() > end)
			return false;
		phsm_sleep_ms(100);
	}
}

FIXTURE(card1) {
	int fd;
	char name[64];
	char dev[96];
	char pci[64];
	long long saved_timeout;
	bool surprise;
};

FIXTURE_SETUP(card1)
{
	FILE *f;

	self->fd = -1;
	self->saved_timeout = -1;
	/* The tests skip (a skip in a 6.1 setup would not stop them). */
	if (!phsm_host_available())
		return;
	f = fopen(PCI_NOTE, "r");
	if (f) {
		ASSERT_EQ(1, fscanf(f, "%63s", self->pci));
		fclose(f);
	} else {
		snprintf(self->name, sizeof(self->name), "%s",
			 phsm_name(phsm_dev1()));
		ASSERT_EQ(0, phsm_pci_addr(self->name, self->pci,
					   sizeof(self->pci)));
		f = fopen(PCI_NOTE, "w");
		ASSERT_NE(NULL, f);
		fprintf(f, "%s\n", self->pci);
		fclose(f);
	}
	ASSERT_TRUE(wait_bound(self->pci, self->name, sizeof(self->name),
			       60000))
		TH_LOG("no phsm device at %s", self->pci);
	snprintf(self->dev, sizeof(self->dev), "/dev/%s", self->name);
	self->saved_timeout = phsm_param_timeout();
	ASSERT_LT(0, self->saved_timeout);
	self->fd = phsm_open(self->dev);
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", self->dev,
				      strerror(-self->fd));
	ASSERT_EQ(0, phsm_nop(self->fd, 1, 0));
}

FIXTURE_TEARDOWN(card1)
{
	if (self->surprise)
		phsm_host("set %s surprise-removed false", phsm_card1());
	if (self->saved_timeout > 0)
		EXPECT_EQ(0, phsm_set_param_timeout(self->saved_timeout));
	if (self->fd >= 0)
		EXPECT_EQ(0, close(self->fd));
}

/* What every call on a file of a removed card must do. */
static void expect_gone(struct __test_metadata *_metadata, int fd,
			const char *dev)
{
	struct phsm_ioctl_info info;
	struct phsm_completion c[4];
	struct tmsg nop = msg_plain(PHSM_OP_NOP, 3);
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLOUT };
	uint8_t resp[64];
	uint64_t t0 = phsm_now_ms();
	ssize_t r;
	int fd2;

	EXPECT_EQ(-ENODEV, phsm_nop(fd, 2, 0));
	/* At once: nothing waits for a card that is gone. */
	EXPECT_GE(1000, phsm_now_ms() - t0);
	EXPECT_EQ(-ENODEV, phsm_info(fd, &info));
	EXPECT_EQ(-ENODEV, phsm_submit_async(fd, nop.p, nop.len, resp,
					     sizeof(resp), 0, 0, NULL));
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_TRUE(pfd.revents & (POLLHUP | POLLERR))
		TH_LOG("revents %#x", pfd.revents);
	/* Completions still queued may be read, then ENODEV. */
	do {
		r = read(fd, c, sizeof(c));
	} while (r > 0);
	EXPECT_EQ(-1, r);
	EXPECT_EQ(ENODEV, errno);
	/* No new file on the removed card. */
	fd2 = phsm_open(dev);
	EXPECT_TRUE(fd2 == -ENODEV || fd2 == -ENOENT || fd2 == -ENXIO)
		TH_LOG("open after removal: %d", fd2);
	if (fd2 >= 0)
		close(fd2);
	tmsg_free(&nop);
}

TEST_F_TIMEOUT(card1, hot_unplug_with_open_fd, 300)
{
	struct tmsg nop = msg_plain(PHSM_OP_NOP, 0xabc);
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN };
	uint8_t resp[64];
	char name[64];
	int fd, ret;

	NEED_HOST();

	/* A completion left unread across the removal. */
	ASSERT_EQ(0, phsm_submit_async(self->fd, nop.p, nop.len, resp,
				       sizeof(resp), 1, 0, NULL));
	ASSERT_EQ(1, poll(&pfd, 1, 10000));

	phsm_host("device_del %s", phsm_card1());
	ASSERT_TRUE(wait_pci(self->pci, false, 60000))
		TH_LOG("%s still present after device_del", self->pci);
	expect_gone(_metadata, self->fd, self->dev);
	EXPECT_EQ(0, close(self->fd));
	self->fd = -1;

	/* Plugged back, the card works again. */
	phsm_host("device_add %s", phsm_card1());
	ASSERT_TRUE(wait_bound(self->pci, name, sizeof(name), 60000))
		TH_LOG("%s did not come back", self->pci);
	snprintf(self->dev, sizeof(self->dev), "/dev/%s", name);
	fd = phsm_open(self->dev);
	ASSERT_LE(0, fd) TH_LOG("open %s: %s", self->dev, strerror(-fd));
	ret = phsm_nop(fd, 4, 0);
	EXPECT_EQ(0, ret) TH_LOG("%s", strerror(-ret));
	EXPECT_EQ(0, close(fd));
	tmsg_free(&nop);
}

TEST_F_TIMEOUT(card1, surprise_removal, 300)
{
	uint64_t end;
	char state[32];
	int ret = 0;

	NEED_HOST();

	ASSERT_EQ(0, phsm_set_param_timeout(1000));
	phsm_host("set %s surprise-removed true", phsm_card1());
	self->surprise = true;
	/*
	 * Until the host has acted commands work; then the driver finds
	 * the registers reading all ones, at once or when a command times
	 * out.
	 */
	for (end = phsm_now_ms() + 60000; phsm_now_ms() < end;) {
		ret = phsm_nop(self->fd, 5, 0);
		if (ret == -ENODEV)
			break;
		ASSERT_TRUE(ret == 0 || ret == -ETIMEDOUT || ret == -EIO)
			TH_LOG("%s", strerror(-ret));
		phsm_sleep_ms(50);
	}
	ASSERT_EQ(-ENODEV, ret);
	/*
	 * The state follows (the driver may still be finishing its reset
	 * attempt when the first call fails), unless the class device is
	 * already gone.
	 */
	for (end = phsm_now_ms() + 5000; phsm_now_ms() < end;) {
		if (phsm_attr(self->name, "state", state, sizeof(state)) ||
		    strcmp(state, "removed") == 0)
			break;
		phsm_sleep_ms(50);
	}
	if (phsm_attr(self->name, "state", state, sizeof(state)) == 0)
		EXPECT_STREQ("removed", state);
	expect_gone(_metadata, self->fd, self->dev);
	EXPECT_EQ(0, close(self->fd));
	self->fd = -1;

	/* The slot is then emptied for good; the driver lets go cleanly. */
	phsm_host("set %s surprise-removed false", phsm_card1());
	self->surprise = false;
	phsm_host("device_del %s", phsm_card1());
	EXPECT_TRUE(wait_pci(self->pci, false, 60000));
}

TEST_HARNESS_MAIN
