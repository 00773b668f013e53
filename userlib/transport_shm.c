// SPDX-License-Identifier: MIT
/*
 * The shared-memory transport to phsm-fw (uapi/phsm_shm.h): the fast path
 * on one machine.
 *
 * The Unix socket is still the application context (its close ends the
 * sessions, logins and cluster locks of the process) but carries only
 * PHSM_OP_SHM_ATTACH: each channel is a memfd with the card's own SQ/CQ
 * ring format and a data area, served by a daemon thread of its own.  A
 * request is written into the data area, announced by an SQ entry and the
 * tail doorbell, and answered by a CQ entry whose phase tag says it is
 * complete; no system call is needed while both sides are polling, and a
 * futex wake-up when one sleeps.
 *
 * Channels are a per-connection pool: a calling thread takes a free one
 * (the one it had last time if it is free, so a thread keeps its channel
 * and its daemon thread), and attaches a new one when none is free, up
 * to PHSM_SHM_CHANNELS_MAX; then it waits for one.  Calls are synchronous,
 * so one channel carries one request at a time, and threads with their
 * own channels run in parallel.  When the application forbade OS locking,
 * one channel serves every call under one of its mutexes.
 *
 * A call builds its request straight in the data area of the channel
 * lent to it (->lease, from call_begin() to call_end()); ->call copies a
 * request built elsewhere in.  Either way the data area is wiped of
 * request and answer when the call is done.
 *
 * Nothing the daemon writes is trusted: a completion must carry our
 * command id and a length inside the data area, and the response is
 * copied out before anyone parses it (call.c: but for an output, copied
 * once to the caller by a length from our copy).  While waiting, the
 * socket is watched: its end means the daemon is gone.  Mappings are not
 * inherited by fork() children (MADV_DONTFORK), which talk to the card
 * afresh.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../uapi/phsm_shm.h"
#include "lib.h"
#include "transport.h"

#define HDR_LEN		sizeof(struct phsm_msg_hdr)
#define QDEPTH		4
#define MAP_SIZE	((size_t)PHSM_SHM_DATA_OFF + PHSM_MSG_MAX)
#define DATA_LEN	PHSM_MSG_MAX
#define NSEC		1000000000ll
#define WAIT_SLICE_NS	(100 * 1000000ll)	/* then look at the socket */
#define SPIN_PURE_NS	2000		/* busy-poll before yielding */
#define SPIN_MAX_NS	50000		/* poll this long at most ... */
#define SPIN_MIN_NS	2000		/* ... this long after long waits */

struct shm_chan {
	uint8_t *map;
	struct phsm_shm_hdr *hdr;
	struct phsm_sqe *sq;
	struct phsm_cqe *cq;
	uint32_t sq_tail;
	uint32_t cq_head;
	uint16_t phase;
	uint16_t next_cid;
	long long avg_wait;		/* ns, moving average */
};

struct shm_conn {
	struct phsm_transport base;
	int fd;				/* the socket: the app context */
	uint64_t id;			/* tells this transport from others */
	bool serial;			/* application mutexes only */
	struct lib_mutex *xlock;	/* serial mode: one call at a time */
	pthread_mutex_t lock;		/* threaded mode: the pool below */
	pthread_cond_t cond;		/* a channel came free or was added */
	struct shm_chan *chans[PHSM_SHM_CHANNELS_MAX];	/* set before free */
	unsigned int nchans;
	/*
	 * Bit i: chans[i] is free.  Taken and given back with atomics, so a
	 * thread that finds its own channel free needs no lock; the lock
	 * and @waiters are for those that must wait or add a channel.
	 */
	_Atomic uint64_t free_mask;
	atomic_uint waiters;
	bool attaching;			/* a thread is adding a channel */
	bool full;			/* the daemon will take no more */
	atomic_uint next_tag;
	_Atomic CK_RV failed;		/* CKR_OK while the connection works */
};

_Static_assert(PHSM_SHM_CHANNELS_MAX <= 64, "free_mask is 64 bits");
_Static_assert(QDEPTH >= PHSM_SHM_QDEPTH_MIN && QDEPTH <= PHSM_SHM_QDEPTH_MAX,
	       "ring depth");

/* The channel a thread used last, to take it again. */
static _Thread_local struct {
	uint64_t conn;
	unsigned int index;
} affinity;
static atomic_uint_fast64_t conn_ids;

static void conn_fail(struct shm_conn *c, CK_RV rv)
{
	CK_RV ok = CKR_OK;

	atomic_compare_exchange_strong(&c->failed, &ok, rv);
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

/* ---- the socket: attaching channels ------------------------------------ */

/* Send a whole message, @memfd riding on its first byte. */
static bool send_with_fd(int sock, const uint8_t *p, size_t n, int memfd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	struct iovec iov = { .iov_base = (void *)p, .iov_len = n };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	ssize_t k;

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &memfd, sizeof(int));
	do {
		k = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (k < 0 && errno == EINTR);
	if (k <= 0)
		return false;
	p += k;
	n -= (size_t)k;
	while (n) {
		k = send(sock, p, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

/* The answer to SHM_ATTACH: a bare header, nothing else is expected. */
static CK_RV read_attach_answer(int fd, uint32_t tag)
{
	uint8_t hdr[HDR_LEN];
	struct phsm_msg m;

	if (!phsm_read_full(fd, hdr, sizeof(hdr)))
		return CKR_DEVICE_REMOVED;
	if (phsm_msg_peek_length(hdr, sizeof(hdr)) != HDR_LEN ||
	    phsm_msg_parse(hdr, sizeof(hdr), true, &m) != PHSM_ST_OK ||
	    m.opcode != PHSM_OP_SHM_ATTACH || m.tag != tag)
		return CKR_DEVICE_ERROR;
	if (m.status == PHSM_ST_BAD_OPCODE)
		return CKR_FUNCTION_NOT_SUPPORTED;	/* an older daemon */
	if (m.status != PHSM_ST_OK)
		return CKR_DEVICE_ERROR;
	if (m.rv == CKR_DEVICE_MEMORY)
		return CKR_DEVICE_MEMORY;
	return m.rv == CKR_OK ? CKR_OK : CKR_DEVICE_ERROR;
}

/*
 * Hand @memfd to the daemon.  Only one thread at a time does this (the
 * pool's attaching flag, or the serial lock), and nothing else travels
 * on the socket, so the next message on it is the answer.
 */
static CK_RV attach(struct shm_conn *c, int memfd)
{
	struct phsm_writer w = { 0 };
	uint32_t tag = atomic_fetch_add(&c->next_tag, 1) + 1;
	CK_RV rv;

	if (!phsm_msg_begin(&w, PHSM_OP_SHM_ATTACH, 0, 0, tag) ||
	    !phsm_msg_finish(&w, 0, 0)) {
		phsm_writer_free(&w);
		return CKR_HOST_MEMORY;
	}
	rv = send_with_fd(c->fd, w.data, w.len, memfd) ?
	     read_attach_answer(c->fd, tag) : CKR_DEVICE_REMOVED;
	phsm_writer_free(&w);
	/* A broken exchange leaves the stream unusable. */
	if (rv == CKR_DEVICE_REMOVED || rv == CKR_DEVICE_ERROR)
		conn_fail(c, rv);
	return rv;
}

/* ---- channels ---------------------------------------------------------- */

static void chan_free(struct shm_chan *ch)
{
	if (!ch)
		return;
	if (ch->map)
		munmap(ch->map, MAP_SIZE);
	free(ch);
}

/* A sealed memfd with an empty ring, mapped; its descriptor in *memfd. */
static CK_RV chan_create(struct shm_chan **out, int *memfd)
{
	struct shm_chan *ch = calloc(1, sizeof(*ch));
	int fd;

	if (!ch)
		return CKR_HOST_MEMORY;
	fd = memfd_create("phsm-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		goto fail;
	if (ftruncate(fd, (off_t)MAP_SIZE) ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL))
		goto fail;
	ch->map = mmap(NULL, MAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		       fd, 0);
	if (ch->map == MAP_FAILED) {
		ch->map = NULL;
		goto fail;
	}
	/* A fork() child must not share the parent's rings. */
	madvise(ch->map, MAP_SIZE, MADV_DONTFORK);
	ch->hdr = (struct phsm_shm_hdr *)ch->map;
	ch->sq = (struct phsm_sqe *)(ch->map + PHSM_SHM_SQ_OFF);
	ch->cq = (struct phsm_cqe *)(ch->map + PHSM_SHM_CQ_OFF);
	ch->hdr->magic = PHSM_SHM_MAGIC;
	ch->hdr->version = PHSM_SHM_VERSION;
	ch->hdr->qdepth = QDEPTH;
	ch->hdr->size = MAP_SIZE;
	ch->phase = 1;
	*out = ch;
	*memfd = fd;
	return CKR_OK;
fail:
	if (fd >= 0)
		close(fd);
	chan_free(ch);
	return CKR_HOST_MEMORY;
}

/* Make a channel and have the daemon serve it. */
static CK_RV chan_add(struct shm_conn *c, struct shm_chan **out)
{
	struct shm_chan *ch;
	int memfd;
	CK_RV rv = chan_create(&ch, &memfd);

	if (rv != CKR_OK)
		return rv;
	rv = attach(c, memfd);
	/* The daemon has its own reference to the memory now, or none. */
	close(memfd);
	if (rv != CKR_OK) {
		chan_free(ch);
		return rv;
	}
	*out = ch;
	return CKR_OK;
}

/*
 * Is the daemon gone?  It never writes on the socket unasked, so its end
 * is the only thing to find there (or, during an attach by another thread,
 * that thread's answer, which leaves the socket alone).
 */
static bool daemon_gone(struct shm_conn *c)
{
	char b;
	ssize_t k = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	if (k == 0)
		return true;
	return k < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
	       errno != EINTR;
}

static bool cqe_ready(const struct shm_chan *ch)
{
	uint16_t s = __atomic_load_n(&ch->cq[ch->cq_head].status,
				     __ATOMIC_ACQUIRE);

	return (s & PHSM_CQE_PHASE) == ch->phase;
}

/*
 * Publish our CPU and say whether the daemon's channel thread last ran on
 * it too: then it cannot answer before we give the CPU up.
 */
static bool daemon_here(struct shm_chan *ch)
{
	int cpu = sched_getcpu();
	uint32_t me = cpu < 0 ? 0 : (uint32_t)cpu + 1;

	__atomic_store_n(&ch->hdr->host_cpu, me, __ATOMIC_RELAXED);
	return me && __atomic_load_n(&ch->hdr->dev_cpu, __ATOMIC_RELAXED) == me;
}

/*
 * Wait for the completion: poll, then sleep on the futex, looking at the
 * socket every WAIT_SLICE.  Polling yields the CPU at once when the daemon
 * thread shares it, and after SPIN_PURE_NS anyway (on a busy machine it
 * may be waiting for this very CPU).  Polling is cut short when recent
 * waits were long (an RSA signature): it would only take CPU from the
 * daemon.
 */
static CK_RV wait_cqe(struct shm_conn *c, struct shm_chan *ch)
{
	long long start = now_ns(), t;
	long long limit = ch->avg_wait > 4 * SPIN_MAX_NS ? SPIN_MIN_NS :
			  SPIN_MAX_NS;
	bool yielding = daemon_here(ch);
	CK_RV rv = CKR_OK;

	for (unsigned int i = 0; !cqe_ready(ch); i++) {
		if (!yielding && (i & 15) != 15) {
			cpu_relax();
			continue;
		}
		t = now_ns();
		if (t - start > limit)
			goto sleep;
		yielding = daemon_here(ch) || t - start > SPIN_PURE_NS;
		if (yielding)
			sched_yield();
	}
	goto out;
sleep:
	for (;;) {
		uint32_t w = __atomic_load_n(&ch->hdr->host_wake,
					     __ATOMIC_ACQUIRE);

		__atomic_store_n(&ch->hdr->host_sleeping, PHSM_SHM_SLEEPING,
				 __ATOMIC_SEQ_CST);
		if (!cqe_ready(ch))
			futex_wait(&ch->hdr->host_wake, w, WAIT_SLICE_NS);
		__atomic_store_n(&ch->hdr->host_sleeping, PHSM_SHM_AWAKE,
				 __ATOMIC_SEQ_CST);
		if (cqe_ready(ch))
			break;
		if (atomic_load(&c->failed) != CKR_OK || daemon_gone(c)) {
			rv = CKR_DEVICE_REMOVED;
			break;
		}
	}
out:
	ch->avg_wait += (now_ns() - start - ch->avg_wait) / 8;
	return rv;
}

/* The request is in the data area: write its SQ entry, ring the doorbell. */
static void ring(struct shm_chan *ch, size_t len, uint16_t cid)
{
	struct phsm_sqe e = {
		.cid = cid,
		.opcode = PHSM_SQE_MSG,
		.req_len = (uint32_t)len,
		.req_addr = PHSM_SHM_DATA_OFF,
		.resp_addr = PHSM_SHM_DATA_OFF,
		.resp_cap = DATA_LEN,
	};

	memcpy(&ch->sq[ch->sq_tail], &e, sizeof(e));
	ch->sq_tail = (ch->sq_tail + 1) & (QDEPTH - 1);
	__atomic_store_n(&ch->hdr->sq_tail, ch->sq_tail, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&ch->hdr->dev_sleeping, __ATOMIC_SEQ_CST) !=
	    PHSM_SHM_AWAKE) {
		__atomic_fetch_add(&ch->hdr->dev_wake, 1, __ATOMIC_SEQ_CST);
		futex_wake(&ch->hdr->dev_wake);
	}
}

/*
 * Take the completion: consume the CQ entry (copied: read once) and
 * check it; the answer's length in *resp_len.
 */
static CK_RV reap(struct shm_conn *c, struct shm_chan *ch, uint16_t cid,
		  size_t *resp_len)
{
	struct phsm_cqe e;
	uint16_t status;

	memcpy(&e, &ch->cq[ch->cq_head], sizeof(e));
	if (++ch->cq_head == QDEPTH) {
		ch->cq_head = 0;
		ch->phase ^= 1;
	}
	__atomic_store_n(&ch->hdr->cq_head, ch->cq_head, __ATOMIC_RELEASE);
	if (e.cid != cid) {
		/* The ring is out of step: nothing on it can be trusted. */
		conn_fail(c, CKR_DEVICE_ERROR);
		return CKR_DEVICE_ERROR;
	}
	status = PHSM_CQE_STATUS(e.status);
	if (status == PHSM_CQE_INTERNAL)
		return CKR_DEVICE_MEMORY;
	if (status != PHSM_CQE_SUCCESS || e.resp_len < HDR_LEN ||
	    e.resp_len > DATA_LEN)
		return CKR_DEVICE_ERROR;
	*resp_len = e.resp_len;
	return CKR_OK;
}

/*
 * Send the @len-byte request in the data area, the tag in *tag, and wait
 * for the answer, there too.  Whatever happens, *used covers what the
 * data area may now hold of the request or the answer.
 */
static CK_RV exchange(struct shm_conn *c, struct shm_chan *ch, size_t len,
		      uint32_t *tag, size_t *resp_len, size_t *used)
{
	uint16_t cid = ch->next_cid++;
	CK_RV rv;

	*used = len;
	*tag = atomic_fetch_add(&c->next_tag, 1) + 1;
	phsm_put_tag(ch->map + PHSM_SHM_DATA_OFF, *tag);
	ring(ch, len, cid);
	rv = wait_cqe(c, ch);
	if (rv != CKR_OK) {
		conn_fail(c, rv);
		return rv;
	}
	rv = reap(c, ch, cid, resp_len);
	if (rv == CKR_OK && *resp_len > len)
		*used = *resp_len;
	return rv;
}

/*
 * One exchange on a channel this thread holds, for a request of our own:
 * copied in, the answer copied out, then the data area wiped of both (a
 * PIN, plaintext) up to the extent either had.
 */
static CK_RV chan_call(struct shm_conn *c, struct shm_chan *ch, uint8_t *req,
		       size_t len, uint8_t **resp, size_t *resp_len)
{
	uint8_t *data = ch->map + PHSM_SHM_DATA_OFF, *buf;
	size_t n, used;
	uint32_t tag;
	CK_RV rv;

	if (len > DATA_LEN)
		return CKR_DEVICE_MEMORY;
	memcpy(data, req, len);
	rv = exchange(c, ch, len, &tag, &n, &used);
	phsm_put_tag(req, tag);		/* the caller matches the answer */
	if (rv == CKR_OK) {
		buf = malloc(n);
		if (buf)
			memcpy(buf, data, n);
		else
			rv = CKR_HOST_MEMORY;
	}
	phsm_wipe(data, used);
	if (rv != CKR_OK)
		return rv;
	if (phsm_msg_peek_length(buf, n) != n) {
		phsm_wipe(buf, n);
		free(buf);
		return CKR_DEVICE_ERROR;
	}
	*resp = buf;
	*resp_len = n;
	return CKR_OK;
}

/* ---- the pool ---------------------------------------------------------- */

/* Take channel @i if it is free. */
static bool take(struct shm_conn *c, unsigned int i)
{
	uint64_t bit = 1ull << i;

	if (!(atomic_fetch_and(&c->free_mask, ~bit) & bit))
		return false;
	affinity.conn = c->id;
	affinity.index = i;
	return true;
}

/* Add a channel, the pool lock dropped meanwhile.  Called with it held. */
static void grow(struct shm_conn *c)
{
	struct shm_chan *ch = NULL;
	CK_RV rv;

	c->attaching = true;
	pthread_mutex_unlock(&c->lock);
	rv = chan_add(c, &ch);
	pthread_mutex_lock(&c->lock);
	c->attaching = false;
	if (rv == CKR_OK) {
		c->chans[c->nchans] = ch;
		atomic_fetch_or(&c->free_mask, 1ull << c->nchans);
		c->nchans++;
	} else {
		/* Out of memory here or there: make do with what we have. */
		c->full = true;
	}
	pthread_cond_broadcast(&c->cond);
}

/* Any free channel, or a new one, or wait for one.  Called with the lock. */
static CK_RV acquire_slow(struct shm_conn *c, unsigned int *index)
{
	for (;;) {
		CK_RV rv = atomic_load(&c->failed);
		uint64_t m = atomic_load(&c->free_mask);

		if (rv != CKR_OK)
			return rv;
		if (m) {
			*index = (unsigned int)__builtin_ctzll(m);
			if (take(c, *index))
				return CKR_OK;
			continue;
		}
		if (!c->attaching && !c->full &&
		    c->nchans < PHSM_SHM_CHANNELS_MAX) {
			grow(c);
			continue;
		}
		/* Announce the wait, then look again: release() pairs. */
		atomic_fetch_add(&c->waiters, 1);
		if (!atomic_load(&c->free_mask))
			pthread_cond_wait(&c->cond, &c->lock);
		atomic_fetch_sub(&c->waiters, 1);
	}
}

/* A channel for this thread: its own if free, any free one, or a new one. */
static CK_RV acquire(struct shm_conn *c, unsigned int *index)
{
	CK_RV rv = atomic_load(&c->failed);

	if (rv != CKR_OK)
		return rv;
	if (affinity.conn == c->id && take(c, affinity.index)) {
		*index = affinity.index;
		return CKR_OK;
	}
	pthread_mutex_lock(&c->lock);
	rv = acquire_slow(c, index);
	pthread_mutex_unlock(&c->lock);
	return rv;
}

static void release(struct shm_conn *c, unsigned int index)
{
	atomic_fetch_or(&c->free_mask, 1ull << index);
	if (atomic_load(&c->waiters)) {
		pthread_mutex_lock(&c->lock);
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
	}
}

/* ---- the transport ----------------------------------------------------- */

static CK_RV shm_call(struct phsm_transport *t, uint8_t *req, size_t len,
		      uint8_t **resp, size_t *resp_len)
{
	struct shm_conn *c = (struct shm_conn *)t;
	unsigned int index;
	CK_RV rv;

	*resp = NULL;
	*resp_len = 0;
	if (len < HDR_LEN)
		return CKR_GENERAL_ERROR;
	if (c->serial) {
		lib_lock(c->xlock);
		rv = atomic_load(&c->failed);
		if (rv == CKR_OK)
			rv = chan_call(c, c->chans[0], req, len, resp,
				       resp_len);
		lib_unlock(c->xlock);
		return rv;
	}
	rv = acquire(c, &index);
	if (rv != CKR_OK)
		return rv;
	rv = chan_call(c, c->chans[index], req, len, resp, resp_len);
	release(c, index);
	return rv;
}

/*
 * Lend the data area of this thread's channel, or of any free one, to a
 * call that builds its request there.  Never waits, and never in serial
 * mode: the application's lock would be held across the whole call, and
 * a call may start another before it ends.
 */
static bool shm_lease(struct phsm_transport *t, struct phsm_lease *l)
{
	struct shm_conn *c = (struct shm_conn *)t;
	uint64_t m;
	unsigned int i;

	if (c->serial || atomic_load(&c->failed) != CKR_OK)
		return false;
	if (affinity.conn == c->id && take(c, affinity.index)) {
		i = affinity.index;
	} else {
		m = atomic_load(&c->free_mask);
		if (!m)
			return false;
		i = (unsigned int)__builtin_ctzll(m);
		if (!take(c, i))
			return false;
	}
	l->index = i;
	l->buf = c->chans[i]->map + PHSM_SHM_DATA_OFF;
	l->cap = DATA_LEN;
	l->used = 0;
	return true;
}

static CK_RV shm_call_leased(struct phsm_transport *t, struct phsm_lease *l,
			     size_t len, uint32_t *tag, const uint8_t **resp,
			     size_t *resp_len)
{
	struct shm_conn *c = (struct shm_conn *)t;
	struct shm_chan *ch = c->chans[l->index];
	CK_RV rv;

	*resp = NULL;
	*resp_len = 0;
	l->used = len;
	if (len < HDR_LEN || len > DATA_LEN)
		return CKR_GENERAL_ERROR;
	rv = atomic_load(&c->failed);
	if (rv != CKR_OK)
		return rv;
	rv = exchange(c, ch, len, tag, resp_len, &l->used);
	if (rv == CKR_OK)
		*resp = l->buf;
	return rv;
}

static void shm_unlease(struct phsm_transport *t, struct phsm_lease *l,
			size_t written)
{
	struct shm_conn *c = (struct shm_conn *)t;

	phsm_wipe(l->buf, written > l->used ? written : l->used);
	release(c, l->index);
}

static bool shm_dead(struct phsm_transport *t)
{
	struct shm_conn *c = (struct shm_conn *)t;

	return atomic_load(&c->failed) != CKR_OK;
}

static void shm_close(struct phsm_transport *t)
{
	struct shm_conn *c = (struct shm_conn *)t;

	/* The daemon stops the channels and drops the context. */
	if (c->fd >= 0)
		close(c->fd);
	for (unsigned int i = 0; i < c->nchans; i++)
		chan_free(c->chans[i]);
	if (c->serial) {
		lib_mutex_free(c->xlock);
	} else {
		pthread_cond_destroy(&c->cond);
		pthread_mutex_destroy(&c->lock);
	}
	free(c);
}

static void shm_abandon(struct phsm_transport *t)
{
	struct shm_conn *c = (struct shm_conn *)t;

	/*
	 * The mappings are not in the child (MADV_DONTFORK); our copy of
	 * the socket goes without a word, the parent's connection stays.
	 * Locks and memory are left alone: parent threads may have held
	 * them at fork time.
	 */
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	atomic_store(&c->failed, CKR_DEVICE_REMOVED);
}

static const struct phsm_transport_ops shm_ops = {
	.call = shm_call,
	.lease = shm_lease,
	.call_leased = shm_call_leased,
	.unlease = shm_unlease,
	.dead = shm_dead,
	.close = shm_close,
	.abandon = shm_abandon,
};

static CK_RV init_locks(struct shm_conn *c)
{
	if (c->serial)
		return lib_mutex_new(&c->xlock);
	if (pthread_mutex_init(&c->lock, NULL))
		return CKR_HOST_MEMORY;
	if (pthread_cond_init(&c->cond, NULL)) {
		pthread_mutex_destroy(&c->lock);
		return CKR_HOST_MEMORY;
	}
	return CKR_OK;
}

CK_RV phsm_shm_open(const char *path, struct phsm_transport **out)
{
	struct shm_conn *c = calloc(1, sizeof(*c));
	CK_RV rv;

	if (!c)
		return CKR_HOST_MEMORY;
	c->base.ops = &shm_ops;
	atomic_init(&c->base.refs, 1);
	atomic_init(&c->failed, CKR_OK);
	atomic_init(&c->next_tag, 0);
	atomic_init(&c->free_mask, 0);
	atomic_init(&c->waiters, 0);
	c->id = atomic_fetch_add(&conn_ids, 1) + 1;
	c->serial = !lib_os_locking();
	rv = init_locks(c);
	if (rv != CKR_OK) {
		free(c);
		return rv;
	}
	c->fd = phsm_unix_connect(path);
	if (c->fd < 0) {
		shm_close(&c->base);
		return CKR_DEVICE_REMOVED;
	}
	/* The first channel tells whether the daemon offers the transport. */
	rv = chan_add(c, &c->chans[0]);
	if (rv != CKR_OK) {
		shm_close(&c->base);
		return rv == CKR_DEVICE_REMOVED ? rv :
		       CKR_FUNCTION_NOT_SUPPORTED;
	}
	c->nchans = 1;
	atomic_store(&c->free_mask, 1);
	*out = &c->base;
	return CKR_OK;
}
