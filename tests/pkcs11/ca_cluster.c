// SPDX-License-Identifier: MIT
/*
 * The Luna CA_ extensions, part 2: cluster slots.  CA_GetSlotId finds
 * tokens by their current label; CA_GetUnassignedSlot hands out a token
 * whose current label is still its original one ("phsm-<cluster>-<p>",
 * the cluster being the card's serial unless phsm-fw --cluster-id says
 * otherwise), locked; the locks belong to the application context and go
 * away with it, which a killed child process shows.
 */
#include "suite.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <phsm/cryptoki_ca.h>

static CK_PHSM_CA_FUNCTION_LIST *ca_list(void)
{
	CK_INTERFACE_PTR i = NULL;

	assert_rv(S.get_interface((CK_UTF8CHAR_PTR)CK_PHSM_CA_INTERFACE_NAME,
				  NULL, &i, 0), CKR_OK);
	assert_non_null(i);
	return i->pFunctionList;
}

#define CA (ca_list())

/* The card's cluster ID (its serial) and slot 2's original label, as
 * text and blank-padded. */
static void cluster_of_slot2(char cluster[17], char text[33],
			     CK_UTF8CHAR orig[32])
{
	CK_TOKEN_INFO ti;
	size_t n = 0;

	assert_rv(P11->C_GetTokenInfo(S.slot2, &ti), CKR_OK);
	while (n < 16 && ti.serialNumber[n] != '-' && ti.serialNumber[n] != ' ')
		n++;
	memcpy(cluster, ti.serialNumber, n);
	cluster[n] = 0;
	snprintf(text, 33, "phsm-%s-%lu", cluster,
		 (unsigned long)(S.slot2 % 16));
	pad_label(orig, text);
}

static void init_slot2(const char *label)
{
	assert_rv(init_token_and_pin(S.slot2, SO2_PIN, NULL, label, USER2_PIN,
				     NULL), CKR_OK);
}

static void test_get_slot_id(void **state)
{
	CK_UTF8CHAR label[32];
	CK_SLOT_ID slots[4];
	CK_ULONG n;

	(void)state;
	init_slot2("phsm-suite-2");
	pad_label(label, TOKEN_LABEL);
	n = 0;
	assert_rv(CA->CA_GetSlotId(label, NULL, &n), CKR_OK);
	assert_int_equal(n, 1);
	n = ARRAY_SIZE(slots);
	assert_rv(CA->CA_GetSlotId(label, slots, &n), CKR_OK);
	assert_int_equal(n, 1);
	assert_int_equal(slots[0], S.slot);
	n = 0;
	assert_rv(CA->CA_GetSlotId(label, slots, &n), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 1);
	/* Two tokens with one label: both. */
	init_slot2(TOKEN_LABEL);
	n = ARRAY_SIZE(slots);
	assert_rv(CA->CA_GetSlotId(label, slots, &n), CKR_OK);
	assert_int_equal(n, 2);
	assert_int_equal(slots[0], S.slot);
	assert_int_equal(slots[1], S.slot2);
	n = 1;
	assert_rv(CA->CA_GetSlotId(label, slots, &n), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 2);
	init_slot2("phsm-suite-2");
	/* Labels are compared blank-padded, whole. */
	pad_label(label, "phsm-suite-");
	n = ARRAY_SIZE(slots);
	assert_rv(CA->CA_GetSlotId(label, slots, &n), CKR_OK);
	assert_int_equal(n, 0);
	/* Arguments. */
	assert_rv(CA->CA_GetSlotId(NULL, slots, &n), CKR_ARGUMENTS_BAD);
	assert_rv(CA->CA_GetSlotId(label, slots, NULL), CKR_ARGUMENTS_BAD);
	assert_rv(P11->C_Finalize(NULL), CKR_OK);
	assert_rv(CA->CA_GetSlotId(label, slots, &n),
		  CKR_CRYPTOKI_NOT_INITIALIZED);
}

static void test_unassigned_slot(void **state)
{
	CK_UNASSIGNED_SLOT_INFO info;
	CK_UTF8CHAR orig[32];
	CK_SLOT_ID slots[4];
	CK_ULONG n = ARRAY_SIZE(slots);
	char cluster[17], text[33];

	(void)state;
	cluster_of_slot2(cluster, text, orig);
	/* Both tokens assigned (labels of their own): none to hand out. */
	init_slot2("phsm-suite-2");
	assert_rv(CA->CA_GetUnassignedSlot((CK_CHAR_PTR)cluster, &info),
		  CKR_FUNCTION_FAILED);
	/* Back to its original label: unassigned. */
	init_slot2(text);
	assert_rv(CA->CA_GetSlotId(orig, slots, &n), CKR_OK);
	assert_int_equal(n, 1);
	assert_int_equal(slots[0], S.slot2);
	assert_rv(CA->CA_GetUnassignedSlot((CK_CHAR_PTR)cluster, &info), CKR_OK);
	assert_int_equal(info.slotID, S.slot2);
	assert_memory_equal(info.label, orig, 32);
	/* It comes back locked: not handed out again until unlocked. */
	assert_rv(CA->CA_GetUnassignedSlot((CK_CHAR_PTR)cluster, &info),
		  CKR_FUNCTION_FAILED);
	assert_rv(CA->CA_UnlockClusteredSlot(S.slot2), CKR_OK);
	assert_rv(CA->CA_GetUnassignedSlot((CK_CHAR_PTR)cluster, &info), CKR_OK);
	assert_int_equal(info.slotID, S.slot2);
	assert_rv(CA->CA_UnlockClusteredSlot(S.slot2), CKR_OK);
	/* Another cluster has nothing; arguments. */
	assert_rv(CA->CA_GetUnassignedSlot((CK_CHAR_PTR)"no-such-cluster", &info),
		  CKR_FUNCTION_FAILED);
	assert_rv(CA->CA_GetUnassignedSlot(NULL, &info), CKR_ARGUMENTS_BAD);
	assert_rv(CA->CA_GetUnassignedSlot((CK_CHAR_PTR)cluster, NULL),
		  CKR_ARGUMENTS_BAD);
	assert_rv(CA->CA_GetUnassignedSlot((CK_CHAR_PTR)"", &info),
		  CKR_ARGUMENTS_BAD);
	/* Assigning it (a label of its own) ends that. */
	init_slot2("phsm-suite-2");
	assert_rv(CA->CA_GetUnassignedSlot((CK_CHAR_PTR)cluster, &info),
		  CKR_FUNCTION_FAILED);
	assert_rv(P11->C_Finalize(NULL), CKR_OK);
	assert_rv(CA->CA_GetUnassignedSlot((CK_CHAR_PTR)cluster, &info),
		  CKR_CRYPTOKI_NOT_INITIALIZED);
}

/* Threads racing for one unassigned token: exactly one gets it. */
#define RACERS 6

struct racer {
	pthread_t t;
	const char *cluster;
	CK_RV rv;
	CK_SLOT_ID slot;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	CK_UNASSIGNED_SLOT_INFO info;
	CK_PHSM_CA_FUNCTION_LIST *ca = NULL;
	CK_INTERFACE_PTR i = NULL;

	if (S.get_interface((CK_UTF8CHAR_PTR)CK_PHSM_CA_INTERFACE_NAME, NULL,
			    &i, 0) == CKR_OK)
		ca = i->pFunctionList;
	r->rv = ca ? ca->CA_GetUnassignedSlot((CK_CHAR_PTR)r->cluster, &info)
		   : CKR_GENERAL_ERROR;
	r->slot = r->rv == CKR_OK ? info.slotID : 0;
	return NULL;
}

static void test_unassigned_race(void **state)
{
	struct racer r[RACERS];
	CK_UTF8CHAR orig[32];
	char cluster[17], text[33];
	int won = 0;

	(void)state;
	cluster_of_slot2(cluster, text, orig);
	init_slot2(text);
	for (int i = 0; i < RACERS; i++) {
		r[i].cluster = cluster;
		assert_int_equal(pthread_create(&r[i].t, NULL, race, &r[i]), 0);
	}
	for (int i = 0; i < RACERS; i++) {
		pthread_join(r[i].t, NULL);
		if (r[i].rv == CKR_OK) {
			won++;
			assert_int_equal(r[i].slot, S.slot2);
		} else {
			assert_rv(r[i].rv, CKR_FUNCTION_FAILED);
		}
	}
	assert_int_equal(won, 1);
	assert_rv(CA->CA_UnlockClusteredSlot(S.slot2), CKR_OK);
	init_slot2("phsm-suite-2");
}

/* Lock, waiting up to 5 s for an application that is going away. */
static CK_RV lock_eventually(CK_SLOT_ID slot)
{
	CK_RV rv = CKR_GENERAL_ERROR;

	for (int i = 0; i < 500 && rv != CKR_OK; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		rv = CA->CA_LockClusteredSlot(slot);
		if (rv != CKR_OK)
			nanosleep(&ts, NULL);
	}
	return rv;
}

static void test_lock_slot(void **state)
{
	(void)state;
	assert_rv(CA->CA_LockClusteredSlot(S.slot2), CKR_OK);
	assert_rv(CA->CA_LockClusteredSlot(S.slot2), CKR_OK);	/* ours already */
	assert_rv(CA->CA_UnlockClusteredSlot(S.slot2), CKR_OK);
	assert_rv(CA->CA_UnlockClusteredSlot(S.slot2), CKR_OK);	/* not locked */
	assert_rv(CA->CA_LockClusteredSlot(999), CKR_SLOT_ID_INVALID);
	assert_rv(CA->CA_UnlockClusteredSlot(999), CKR_SLOT_ID_INVALID);
	assert_rv(CA->CA_LockClusteredSlot(S.slot + 15), CKR_SLOT_ID_INVALID);
	/* C_Finalize closes the context: the lock goes with it. */
	assert_rv(CA->CA_LockClusteredSlot(S.slot2), CKR_OK);
	assert_rv(P11->C_Finalize(NULL), CKR_OK);
	assert_rv(CA->CA_LockClusteredSlot(S.slot2), CKR_CRYPTOKI_NOT_INITIALIZED);
	assert_int_equal(lib_up(NULL), 0);
	assert_rv(lock_eventually(S.slot2), CKR_OK);
	assert_rv(CA->CA_UnlockClusteredSlot(S.slot2), CKR_OK);
}

/*
 * A child process takes the lock and is killed: the card releases the
 * lock when the child's connection goes, and the parent gets it.
 */
static void test_lock_released_on_kill(void **state)
{
	int fds[2];
	char c = 0;
	pid_t pid;
	int status;
	(void)state;
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
		char ok = 'n';

		close(fds[0]);
		if (P11->C_Initialize(&args) == CKR_OK &&
		    CA->CA_LockClusteredSlot(S.slot2) == CKR_OK)
			ok = 'y';
		if (write(fds[1], &ok, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &c, 1), 1);
	close(fds[0]);
	if (c != 'y') {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("the child could not take the lock");
	}
	/* Held by another application. */
	assert_rv(CA->CA_LockClusteredSlot(S.slot2), CKR_FUNCTION_FAILED);
	assert_rv(CA->CA_UnlockClusteredSlot(S.slot2), CKR_FUNCTION_FAILED);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	/* The card notices the closed connection a moment later. */
	assert_rv(lock_eventually(S.slot2), CKR_OK);
	assert_rv(CA->CA_UnlockClusteredSlot(S.slot2), CKR_OK);
}

const struct CMUnitTest ca_cluster_tests[] = {
	P11_TEST(test_get_slot_id),
	P11_TEST(test_unassigned_slot),
	P11_TEST(test_unassigned_race),
	P11_TEST(test_lock_slot),
	P11_TEST(test_lock_released_on_kill),
};
SUITE_COUNT(ca_cluster);
