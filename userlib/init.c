// SPDX-License-Identifier: MIT
/*
 * C_Initialize, C_Finalize, C_GetInfo; the library's locks; fork().
 *
 * The initialised state is one pointer, read atomically by every call.
 * C_Initialize and C_Finalize are serialised against each other; the spec
 * leaves C_Finalize undefined while other threads are inside the library.
 *
 * Locking follows CK_C_INITIALIZE_ARGS: the library uses pthread mutexes
 * unless the application gave mutex callbacks without CKF_OS_LOCKING_OK,
 * in which case it uses only those (and requests go one at a time, see
 * transport_socket.c).  The library never creates threads, so
 * CKF_LIBRARY_CANT_CREATE_OS_THREADS needs nothing.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lib.h"
#include "transport.h"

#define LIB_VERSION_MAJOR 0
#define LIB_VERSION_MINOR 1

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static struct lib_state *_Atomic current;

/* The application's mutex callbacks, when it gave some. */
static CK_C_INITIALIZE_ARGS app_mutexes;
static bool use_app_mutexes;

struct lib_mutex {
	void *app;			/* the application's mutex, or */
	pthread_mutex_t os;		/* ours */
};

bool lib_os_locking(void)
{
	return !use_app_mutexes;
}

CK_RV lib_mutex_new(struct lib_mutex **out)
{
	struct lib_mutex *m = calloc(1, sizeof(*m));
	CK_RV rv = CKR_OK;

	if (!m)
		return CKR_HOST_MEMORY;
	if (use_app_mutexes)
		rv = app_mutexes.CreateMutex(&m->app);
	else if (pthread_mutex_init(&m->os, NULL))
		rv = CKR_HOST_MEMORY;
	if (rv != CKR_OK) {
		free(m);
		return rv;
	}
	*out = m;
	return CKR_OK;
}

void lib_mutex_free(struct lib_mutex *m)
{
	if (!m)
		return;
	if (use_app_mutexes)
		app_mutexes.DestroyMutex(m->app);
	else
		pthread_mutex_destroy(&m->os);
	free(m);
}

/* The callbacks' errors (CKR_MUTEX_BAD...) have no one to go to. */
void lib_lock(struct lib_mutex *m)
{
	if (use_app_mutexes)
		(void)app_mutexes.LockMutex(m->app);
	else
		pthread_mutex_lock(&m->os);
}

void lib_unlock(struct lib_mutex *m)
{
	if (use_app_mutexes)
		(void)app_mutexes.UnlockMutex(m->app);
	else
		pthread_mutex_unlock(&m->os);
}

struct lib_state *lib_state(void)
{
	return atomic_load(&current);
}

/*
 * In the child of a fork(): the parent's connections are not ours.  Close
 * our copies of the descriptors without sending anything, forget the
 * state (its memory may be locked by parent threads that do not exist
 * here, so it is left behind), and start over uninitialised.
 */
static void atfork_child(void)
{
	struct lib_state *s = atomic_exchange(&current, NULL);

	pthread_mutex_init(&init_lock, NULL);
	if (!s)
		return;
	for (size_t i = 0; i < s->ncards; i++)
		lib_card_abandon(&s->cards[i]);
	use_app_mutexes = false;
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, atfork_child);
}

static CK_RV check_init_args(const CK_C_INITIALIZE_ARGS *a)
{
	int given = !!a->CreateMutex + !!a->DestroyMutex + !!a->LockMutex +
		    !!a->UnlockMutex;

	if (a->pReserved)
		return CKR_ARGUMENTS_BAD;
	if (given != 0 && given != 4)
		return CKR_ARGUMENTS_BAD;
	return CKR_OK;
}

static void state_free(struct lib_state *s)
{
	for (size_t i = 0; i < s->ncards; i++)
		lib_card_teardown(&s->cards[i]);
	free(s->cards);
	free(s);
}

/* Find the cards and connect to each; an unreachable card has no slots. */
static CK_RV state_new(struct lib_state **out)
{
	struct lib_state *s = calloc(1, sizeof(*s));
	char **paths = NULL;
	size_t n = 0;
	CK_RV rv;

	if (!s)
		return CKR_HOST_MEMORY;
	rv = lib_config_cards(&paths, &n);
	if (rv == CKR_OK && n) {
		s->cards = calloc(n, sizeof(*s->cards));
		if (!s->cards)
			rv = CKR_HOST_MEMORY;
	}
	for (size_t i = 0; rv == CKR_OK && i < n; i++) {
		rv = lib_card_setup(&s->cards[i], (unsigned int)i, paths[i]);
		if (rv == CKR_OK)
			s->ncards++;
	}
	lib_config_free(paths, n);
	if (rv != CKR_OK) {
		state_free(s);
		return rv;
	}
	for (size_t i = 0; i < s->ncards; i++)
		lib_card_connect(&s->cards[i]);
	*out = s;
	return CKR_OK;
}

PHSM_EXPORT CK_RV C_Initialize(CK_VOID_PTR pInitArgs)
{
	CK_C_INITIALIZE_ARGS args = { 0 };
	struct lib_state *s;
	CK_RV rv;

	if (pInitArgs) {
		memcpy(&args, pInitArgs, sizeof(args));
		rv = check_init_args(&args);
		if (rv != CKR_OK)
			return rv;
	}
	pthread_once(&atfork_once, register_atfork);
	pthread_mutex_lock(&init_lock);
	if (lib_state()) {
		pthread_mutex_unlock(&init_lock);
		return CKR_CRYPTOKI_ALREADY_INITIALIZED;
	}
	/*
	 * Callbacks without CKF_OS_LOCKING_OK: only they may be used.  With
	 * the flag we may choose, and choose our own.
	 */
	use_app_mutexes = args.CreateMutex && !(args.flags & CKF_OS_LOCKING_OK);
	app_mutexes = args;
	rv = state_new(&s);
	if (rv == CKR_OK)
		atomic_store(&current, s);
	else
		use_app_mutexes = false;
	pthread_mutex_unlock(&init_lock);
	return rv;
}

PHSM_EXPORT CK_RV C_Finalize(CK_VOID_PTR pReserved)
{
	struct lib_state *s;

	if (pReserved)
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock(&init_lock);
	s = atomic_exchange(&current, NULL);
	if (s)
		state_free(s);
	use_app_mutexes = false;
	pthread_mutex_unlock(&init_lock);
	return s ? CKR_OK : CKR_CRYPTOKI_NOT_INITIALIZED;
}

/* Copy a string into a blank-padded, unterminated PKCS#11 field. */
static void pad_copy(CK_UTF8CHAR *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	memset(dst, ' ', size);
	memcpy(dst, src, n < size ? n : size);
}

PHSM_EXPORT CK_RV C_GetInfo(CK_INFO_PTR pInfo)
{
	if (!lib_state())
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (!pInfo)
		return CKR_ARGUMENTS_BAD;
	memset(pInfo, 0, sizeof(*pInfo));
	pInfo->cryptokiVersion.major = 3;
	pInfo->cryptokiVersion.minor = 0;
	pad_copy(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), "phsm");
	pad_copy(pInfo->libraryDescription, sizeof(pInfo->libraryDescription),
		 "phsm PKCS#11 library");
	pInfo->flags = 0;
	pInfo->libraryVersion.major = LIB_VERSION_MAJOR;
	pInfo->libraryVersion.minor = LIB_VERSION_MINOR;
	return CKR_OK;
}
