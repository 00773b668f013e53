// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Run last: the kernel log holds no sign of a kernel bug (BUG, WARNING,
 * Oops, a stack trace, a hung task) after all the phsm tests, including
 * the removal of cards under open files; and card 0, which only saw
 * well-behaved traffic, counted no device error and no timeout.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../kselftest_harness.h"
#include "phsm_lib.h"

TEST(no_kernel_bug_in_log)
{
	int err;
	char *bugs = phsm_kernel_bugs(&err);

	ASSERT_EQ(0, err) TH_LOG("reading the kernel log: %s", strerror(-err));
	EXPECT_EQ(NULL, bugs) TH_LOG("kernel log:\n%s", bugs);
	free(bugs);
}

TEST(card0_counted_no_errors)
{
	const char *name = phsm_name(phsm_dev0());

	EXPECT_EQ(0, phsm_attr_num(name, "errors"));
	EXPECT_EQ(0, phsm_attr_num(name, "timeouts"));
}

TEST_HARNESS_MAIN
