// SPDX-License-Identifier: MIT
/*
 * phsm-fw's shared-memory channels (uapi/phsm_shm.h).
 *
 * One thread per channel, and a client uses a channel from one thread at
 * a time, so a request runs inline on the thread that noticed it: no queue,
 * no hand-off to a pool, no write lock.  Different channels of one
 * connection (different client threads) run in parallel.
 *
 * The mapping belongs to the client as much as to us, and the client may
 * write anything into it at any moment.  So: the channel's geometry is
 * read once, at attach; each doorbell value is loaded once and checked
 * against the ring; each SQ entry and each request is copied out before
 * it is looked at; every offset and length is checked against the data
 * area; and no wait lasts longer than WAIT_SLICE before the stop flag is
 * checked again.  The memfd is sealed against shrinking, so the mapping
 * cannot fault under us.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <phsm/pkcs11.h>

#include "firmware-sim/core/card.h"
#include "uapi/codec/phsm_codec.h"
#include "uapi/phsm_shm.h"
#include "shm.h"

#define HDR_LEN		sizeof(struct phsm_msg_hdr)
#define NSEC		1000000000ll
#define WAIT_SLICE_NS	(200 * 1000000ll)	/* longest futex wait */
#define SPIN_PURE_NS	2000		/* busy-poll before yielding */
#define SPIN_MAX_NS	50000		/* poll this long at most ... */
#define SPIN_MIN_NS	2000		/* ... this long after long waits */
#define CHANNELS_TOTAL	1024		/* channels of all connections */
/* Request copy kept between requests: 1 MiB of data and its fields. */
#define BUF_KEEP	((1u << 20) + (64u << 10))
#define LARGE_BUDGET	(256u << 20)	/* bytes of larger requests in flight */

struct shm_chan {
	struct fw_card *card;
	uint64_t app;
	uint8_t *map;
	size_t size;
	uint32_t qdepth;		/* read once, at attach */
	struct phsm_shm_hdr *hdr;
	struct phsm_sqe *sq;
	struct phsm_cqe *cq;
	uint32_t sq_head;		/* ours, never read back */
	uint32_t cq_tail;
	uint16_t phase;
	long long avg_wait;		/* ns, moving average */
	atomic_bool stop;
	bool complained;
	pthread_t thread;
	uint8_t *buf;			/* private copy of the request */
	struct shm_chan *next;
};

static atomic_uint channels;

/*
 * Requests above BUF_KEEP get a buffer of their own, and their copies
 * (and the answers, counted alike) share one budget: many clients sending
 * 16 MiB requests at once must wait their turn, as on the socket
 * (QUEUED_MAX), rather than exhaust the daemon's memory.
 */
static pthread_mutex_t large_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t large_cond = PTHREAD_COND_INITIALIZER;
static size_t large_bytes;

static void chan_log(struct shm_chan *ch, const char *what)
{
	/* Once per channel: a scribbling client must not flood the log. */
	if (ch->complained)
		return;
	ch->complained = true;
	fprintf(stderr, "phsm-fw: shared-memory channel: %s\n", what);
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC + ts.tv_nsec;
}

static void futex_wake(uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static void futex_wait(uint32_t *word, uint32_t val, long long ns)
{
	struct timespec ts = { .tv_sec = ns / NSEC, .tv_nsec = ns % NSEC };

	syscall(SYS_futex, word, FUTEX_WAIT, val, &ts, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static uint32_t load32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Is an SQ entry waiting, with room in the CQ for its completion? */
static bool work_ready(struct shm_chan *ch)
{
	uint32_t tail = load32(&ch->hdr->sq_tail);
	uint32_t head = load32(&ch->hdr->cq_head);

	if (tail >= ch->qdepth || head >= ch->qdepth) {
		chan_log(ch, "doorbell beyond the ring ignored");
		return false;
	}
	return tail != ch->sq_head &&
	       ((ch->cq_tail + 1) & (ch->qdepth - 1)) != head;
}

/*
 * Publish our CPU and say whether the client's thread last ran on it
 * too: then it cannot answer before we give the CPU up.
 */
static bool client_here(struct shm_chan *ch)
{
	int cpu = sched_getcpu();
	uint32_t me = cpu < 0 ? 0 : (uint32_t)cpu + 1;

	__atomic_store_n(&ch->hdr->dev_cpu, me, __ATOMIC_RELAXED);
	return me &&
	       __atomic_load_n(&ch->hdr->host_cpu, __ATOMIC_RELAXED) == me;
}

/*
 * Poll for work, then sleep on the futex.  Polling yields the CPU at once
 * when the client shares it, and after SPIN_PURE_NS anyway: on a busy
 * machine the client may be waiting for this very CPU.  When the recent
 * waits were long, polling would only burn time, so it is cut short.
 * False once the channel must stop.
 */
static bool wait_work(struct shm_chan *ch)
{
	long long start = now_ns(), t = start;
	long long limit = ch->avg_wait > 4 * SPIN_MAX_NS ? SPIN_MIN_NS :
			  SPIN_MAX_NS;
	bool ok = false, yielding = client_here(ch);

	for (unsigned int i = 0;; i++) {
		if (work_ready(ch)) {
			ok = true;
			goto out;
		}
		if (atomic_load_explicit(&ch->stop, memory_order_relaxed))
			goto out;
		if (yielding || (i & 15) == 15) {
			t = now_ns();
			if (t - start > limit)
				break;
			yielding = client_here(ch) || t - start > SPIN_PURE_NS;
			if (yielding)
				sched_yield();
		}
		cpu_relax();
	}
	for (;;) {
		uint32_t w = load32(&ch->hdr->dev_wake);

		__atomic_store_n(&ch->hdr->dev_sleeping, PHSM_SHM_SLEEPING,
				 __ATOMIC_SEQ_CST);
		if (!work_ready(ch) && !atomic_load(&ch->stop))
			futex_wait(&ch->hdr->dev_wake, w, WAIT_SLICE_NS);
		__atomic_store_n(&ch->hdr->dev_sleeping, PHSM_SHM_AWAKE,
				 __ATOMIC_SEQ_CST);
		if (work_ready(ch)) {
			ok = true;
			break;
		}
		if (atomic_load(&ch->stop))
			break;
	}
	t = now_ns();
out:
	ch->avg_wait += (t - start - ch->avg_wait) / 8;
	return ok;
}

/* Post a completion, phase tag last, and wake the client if it sleeps. */
static void post(struct shm_chan *ch, uint16_t cid, uint16_t status,
		 uint32_t resp_len)
{
	struct phsm_cqe *e = &ch->cq[ch->cq_tail];

	e->resp_len = resp_len;
	e->reserved0 = 0;
	e->sq_head = (uint16_t)ch->sq_head;
	e->reserved1 = 0;
	e->cid = cid;
	__atomic_store_n(&e->status, (uint16_t)(status << 1 | ch->phase),
			 __ATOMIC_RELEASE);
	if (++ch->cq_tail == ch->qdepth) {
		ch->cq_tail = 0;
		ch->phase ^= 1;
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (load32(&ch->hdr->host_sleeping) != PHSM_SHM_AWAKE) {
		__atomic_fetch_add(&ch->hdr->host_wake, 1, __ATOMIC_SEQ_CST);
		futex_wake(&ch->hdr->host_wake);
	}
}

/* Is [off, off + len) inside the data area? */
static bool in_data(const struct shm_chan *ch, uint64_t off, uint64_t len)
{
	return off >= PHSM_SHM_DATA_OFF && off <= ch->size &&
	       len <= ch->size - off;
}

/* Check an SQ entry (our copy); a PHSM_CQE_* status. */
static uint16_t check_sqe(const struct shm_chan *ch, const struct phsm_sqe *e)
{
	if (e->opcode != PHSM_SQE_MSG)
		return PHSM_CQE_INVALID_OPCODE;
	if (e->flags || e->reserved0 || e->reserved1[0] || e->reserved1[1] ||
	    e->reserved1[2])
		return PHSM_CQE_INVALID_FIELD;
	if (e->app_ctx)
		return PHSM_CQE_BAD_CONTEXT;
	if (e->req_len < HDR_LEN || e->req_len > PHSM_MSG_MAX ||
	    e->resp_cap < HDR_LEN)
		return PHSM_CQE_INVALID_LENGTH;
	if (!in_data(ch, e->req_addr, e->req_len) ||
	    !in_data(ch, e->resp_addr, e->resp_cap))
		return PHSM_CQE_INVALID_FIELD;
	return PHSM_CQE_SUCCESS;
}

/* Reserve @n bytes of the large-request budget; false to stop. */
static bool large_take(struct shm_chan *ch, size_t n)
{
	bool ok;

	pthread_mutex_lock(&large_lock);
	while (large_bytes && large_bytes + n > LARGE_BUDGET &&
	       !atomic_load(&ch->stop)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += WAIT_SLICE_NS;
		ts.tv_sec += ts.tv_nsec / NSEC;
		ts.tv_nsec %= NSEC;
		pthread_cond_timedwait(&large_cond, &large_lock, &ts);
	}
	ok = !atomic_load(&ch->stop);
	if (ok)
		large_bytes += n;
	pthread_mutex_unlock(&large_lock);
	return ok;
}

static void large_give(size_t n)
{
	pthread_mutex_lock(&large_lock);
	large_bytes -= n;
	pthread_cond_broadcast(&large_cond);
	pthread_mutex_unlock(&large_lock);
}

/*
 * Copy the request out of the mapping, into the channel's buffer or, for
 * a large one, a buffer of its own; NULL without memory.
 */
static uint8_t *copy_request(struct shm_chan *ch, const struct phsm_sqe *e)
{
	uint8_t *p;

	if (e->req_len > BUF_KEEP) {
		p = malloc(e->req_len);
	} else {
		if (!ch->buf) {
			ch->buf = malloc(BUF_KEEP);
			if (!ch->buf)
				return NULL;
		}
		p = ch->buf;
	}
	if (p)
		memcpy(p, ch->map + e->req_addr, e->req_len);
	return p;
}

/* Run one SQ entry and post its completion. */
static void run_entry(struct shm_chan *ch)
{
	struct phsm_sqe e;
	uint8_t *req, *resp = NULL;
	size_t resp_len = 0, large;
	uint16_t status;

	memcpy(&e, &ch->sq[ch->sq_head], sizeof(e));
	ch->sq_head = (ch->sq_head + 1) & (ch->qdepth - 1);
	status = check_sqe(ch, &e);
	if (status != PHSM_CQE_SUCCESS) {
		chan_log(ch, "bad submission entry answered with an error");
		post(ch, e.cid, status, 0);
		return;
	}
	/* A large request is likely to have a large answer: count both. */
	large = e.req_len > BUF_KEEP ? 2 * (size_t)e.req_len : 0;
	if (large && !large_take(ch, large)) {
		post(ch, e.cid, PHSM_CQE_ABORTED, 0);
		return;
	}
	req = copy_request(ch, &e);
	if (!req || fw_card_handle(ch->card, ch->app, req, e.req_len, &resp,
				   &resp_len)) {
		post(ch, e.cid, PHSM_CQE_INTERNAL, 0);
	} else if (resp_len > e.resp_cap) {
		post(ch, e.cid, PHSM_CQE_RESP_OVERFLOW, (uint32_t)resp_len);
	} else {
		memcpy(ch->map + e.resp_addr, resp, resp_len);
		post(ch, e.cid, PHSM_CQE_SUCCESS, (uint32_t)resp_len);
	}
	/*
	 * Our copies may hold a PIN or plaintext: wipe the bytes used, after
	 * posting (the client reads its answer meanwhile).  The mapping is
	 * the client's to wipe.
	 */
	phsm_wipe(resp, resp_len);
	free(resp);
	if (req)
		phsm_wipe(req, e.req_len);
	if (req != ch->buf)
		free(req);
	if (large)
		large_give(large);
}

static void *chan_thread(void *arg)
{
	struct shm_chan *ch = arg;

	while (wait_work(ch))
		run_entry(ch);
	return NULL;
}

/* The memfd: sealed against shrinking, of a size we accept. */
static bool fd_acceptable(int fd, size_t *size)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);

	if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_SEAL)) !=
			 (F_SEAL_SHRINK | F_SEAL_SEAL))
		return false;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    st.st_size < PHSM_SHM_DATA_OFF + PHSM_SHM_DATA_MIN ||
	    st.st_size > (off_t)PHSM_SHM_DATA_OFF + PHSM_MSG_MAX)
		return false;
	*size = (size_t)st.st_size;
	return true;
}

/* The header's geometry, read once. */
static bool geometry_ok(struct shm_chan *ch)
{
	struct phsm_shm_hdr h;
	uint32_t q;

	memcpy(&h, ch->map, offsetof(struct phsm_shm_hdr, sq_tail));
	q = h.qdepth;
	if (h.magic != PHSM_SHM_MAGIC || h.version != PHSM_SHM_VERSION ||
	    h.size != ch->size || h.reserved0 ||
	    q < PHSM_SHM_QDEPTH_MIN || q > PHSM_SHM_QDEPTH_MAX || (q & (q - 1)))
		return false;
	ch->qdepth = q;
	ch->hdr = (struct phsm_shm_hdr *)ch->map;
	ch->sq = (struct phsm_sqe *)(ch->map + PHSM_SHM_SQ_OFF);
	ch->cq = (struct phsm_cqe *)(ch->map + PHSM_SHM_CQ_OFF);
	/* Start where the client's doorbells are (both 0 on a new ring). */
	ch->sq_head = load32(&ch->hdr->sq_tail);
	ch->cq_tail = load32(&ch->hdr->cq_head);
	ch->phase = 1;
	return ch->sq_head == 0 && ch->cq_tail == 0;
}

static void chan_free(struct shm_chan *ch)
{
	if (ch->map)
		munmap(ch->map, ch->size);
	free(ch->buf);
	free(ch);
}

/* Count a new channel against CHANNELS_TOTAL; false if there is no room. */
static bool channel_slot(void)
{
	unsigned int n = atomic_load(&channels);

	do {
		if (n >= CHANNELS_TOTAL)
			return false;
	} while (!atomic_compare_exchange_weak(&channels, &n, n + 1));
	return true;
}

static uint32_t chan_start(struct shm_chan *ch, uint32_t *rv)
{
	if (!channel_slot()) {
		*rv = CKR_DEVICE_MEMORY;
		return PHSM_ST_OK;
	}
	if (pthread_create(&ch->thread, NULL, chan_thread, ch)) {
		atomic_fetch_sub(&channels, 1);
		*rv = CKR_DEVICE_MEMORY;
		return PHSM_ST_OK;
	}
	*rv = CKR_OK;
	return PHSM_ST_OK;
}

uint32_t shm_attach(struct fw_card *card, uint64_t app, int fd,
		    struct shm_chan **list, unsigned int *count, uint32_t *rv)
{
	struct shm_chan *ch;
	uint32_t st;
	size_t size;

	*rv = CKR_OK;
	if (fd < 0)
		return PHSM_ST_BAD_VALUE;
	if (!fd_acceptable(fd, &size)) {
		close(fd);
		return PHSM_ST_BAD_VALUE;
	}
	if (*count >= PHSM_SHM_CHANNELS_MAX) {
		close(fd);
		*rv = CKR_DEVICE_MEMORY;
		return PHSM_ST_OK;
	}
	ch = calloc(1, sizeof(*ch));
	if (!ch) {
		close(fd);
		*rv = CKR_DEVICE_MEMORY;
		return PHSM_ST_OK;
	}
	ch->card = card;
	ch->app = app;
	ch->size = size;
	ch->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (ch->map == MAP_FAILED) {
		ch->map = NULL;
		chan_free(ch);
		*rv = CKR_DEVICE_MEMORY;
		return PHSM_ST_OK;
	}
	if (!geometry_ok(ch)) {
		chan_free(ch);
		return PHSM_ST_BAD_VALUE;
	}
	atomic_init(&ch->stop, false);
	st = chan_start(ch, rv);
	if (*rv != CKR_OK) {
		chan_free(ch);
		return st;
	}
	ch->next = *list;
	*list = ch;
	(*count)++;
	return st;
}

void shm_detach_all(struct shm_chan **list, unsigned int *count)
{
	struct shm_chan *ch;

	/* Tell them all first, so they wind down together. */
	for (ch = *list; ch; ch = ch->next) {
		atomic_store(&ch->stop, true);
		__atomic_fetch_add(&ch->hdr->dev_wake, 1, __ATOMIC_SEQ_CST);
		futex_wake(&ch->hdr->dev_wake);
	}
	while ((ch = *list)) {
		*list = ch->next;
		pthread_join(ch->thread, NULL);
		atomic_fetch_sub(&channels, 1);
		chan_free(ch);
	}
	*count = 0;
}
