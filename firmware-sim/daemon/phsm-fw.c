// SPDX-License-Identifier: MIT
/*
 * phsm-fw: the card firmware as a daemon.  One process is one card; its
 * clients connect to a Unix socket, and each connection is one
 * application context.
 *
 * Bridge connections (--bridge, used by the QEMU device model) carry many
 * application contexts, named by the header's app_ctx: PHSM_OP_APP_OPEN
 * opens one, PHSM_OP_APP_CLOSE closes it after its requests in flight,
 * and the end of the connection closes them all.  The reader thread
 * handles APP_OPEN itself, so a request queued right behind it already
 * finds its context.
 *
 * Threads: the main thread accepts connections; each connection has a
 * reader thread that frames requests and queues them for a small pool of
 * workers, so that requests of one connection (sent by different threads
 * of the client, told apart by their tags) run in parallel.  A worker
 * writes its response whole under the connection's write lock.  When a
 * connection ends, its reader waits for the requests still in flight and
 * then closes the application context.
 *
 * The fast path: a plain connection may attach shared-memory channels
 * (PHSM_OP_SHM_ATTACH with a memfd, uapi/phsm_shm.h; shm.c).  Each is
 * served by a thread of its own that runs its requests inline, without
 * the queue and the pool; the socket stays the application context, and
 * its end stops the channels before the context is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "firmware-sim/core/card.h"
#include "uapi/codec/phsm_codec.h"
#include "uapi/phsm_shm.h"
#include "shm.h"

#define HDR_LEN		sizeof(struct phsm_msg_hdr)
#define INFLIGHT_MAX	64	/* queued requests per plain connection */
#define BRIDGE_INFLIGHT_MAX	1024	/* ... per bridge connection */
#define BRIDGE_CTX_MAX	65536	/* contexts open on one bridge connection */
#define BRIDGE_BUCKETS	256
#define QUEUED_MAX	(64u << 20)	/* queued request bytes per connection */
#define EXIT_USAGE	2

static const struct timeval send_timeout = { .tv_sec = 30 };

struct job;

/* An application context of a bridge connection. */
struct bctx {
	uint64_t id;		/* the bridge's app_ctx */
	uint64_t app;		/* the card's context */
	unsigned int inflight;	/* its requests queued or running */
	struct job *close_job;	/* APP_CLOSE waiting for them */
	struct bctx *next;	/* hash chain */
};

struct conn {
	int fd;
	uint64_t app;		/* plain: the connection's context */
	bool bridge;
	pthread_mutex_t lock;	/* inflight, contexts, write side */
	pthread_cond_t idle;
	unsigned int inflight;
	unsigned int inflight_max;
	size_t queued;		/* bytes of the requests in flight */
	bool broken;		/* a write failed: stop reading too */
	struct bctx *ctx[BRIDGE_BUCKETS];	/* bridge: open contexts */
	unsigned int nctx;
	struct shm_chan *chans;	/* plain: shared-memory channels (reader only) */
	unsigned int nchans;
	struct conn *next;	/* the daemon's list */
};

struct job {
	struct conn *conn;
	uint64_t app;		/* the card's context to run it in */
	struct bctx *ctx;	/* bridge: its context, or NULL */
	bool close;		/* bridge: APP_CLOSE of ctx */
	uint8_t *req;
	size_t len;
	struct job *next;
};

static struct fw_card *card;
static int wake_pipe[2] = { -1, -1 };	/* signal handler -> main loop */

/* The job queue and the pool. */
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cond = PTHREAD_COND_INITIALIZER;
static struct job *queue_head, *queue_tail;
static bool stopping;

/* Live connections, so shutdown can end them. */
static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t conns_cond = PTHREAD_COND_INITIALIZER;
static struct conn *conns;
static unsigned int nconns;

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("phsm-fw: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- I/O -------------------------------------------------------------- */

/*
 * Read exactly len bytes, and take the descriptor that came with them
 * (SCM_RIGHTS; PHSM_OP_SHM_ATTACH sends a memfd with its header).  More
 * than one descriptor is refused: they are all closed and *fd is -2.
 */
static bool read_full_fd(int sock, uint8_t *buf, size_t len, int *fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} cbuf;

	*fd = -1;
	while (len) {
		struct iovec iov = { .iov_base = buf, .iov_len = len };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf),
		};
		struct cmsghdr *cm;
		ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);

		if (n < 0 && errno == EINTR)
			continue;
		for (cm = CMSG_FIRSTHDR(&mh); n >= 0 && cm;
		     cm = CMSG_NXTHDR(&mh, cm)) {
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			if (cm->cmsg_level != SOL_SOCKET ||
			    cm->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t i = 0; i < k; i++) {
				int got;

				memcpy(&got, CMSG_DATA(cm) + i * sizeof(int),
				       sizeof(int));
				if (*fd >= 0)
					close(*fd);
				if (*fd == -1 && k == 1) {
					*fd = got;
				} else {
					close(got);
					*fd = -2;
				}
			}
		}
		if (n <= 0) {
			if (*fd >= 0)
				close(*fd);
			*fd = -1;
			return false;
		}
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/* Read exactly len bytes; false on EOF or error. */
static bool read_full(int fd, uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = read(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

static bool write_full(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/* Send one whole response under the write lock. */
static void send_response(struct conn *c, const uint8_t *resp, size_t len)
{
	bool ok;

	pthread_mutex_lock(&c->lock);
	ok = !c->broken && write_full(c->fd, resp, len);
	if (!ok && !c->broken) {
		c->broken = true;
		shutdown(c->fd, SHUT_RDWR);	/* wakes the reader */
	}
	pthread_mutex_unlock(&c->lock);
}

/* Answer one request in the card's context @app. */
static void answer(struct conn *c, uint64_t app, const uint8_t *req,
		   size_t len)
{
	uint8_t *resp = NULL;
	size_t resp_len = 0;

	if (fw_card_handle(card, app, req, len, &resp, &resp_len)) {
		logmsg("out of memory answering a request; dropping the connection");
		shutdown(c->fd, SHUT_RDWR);
		return;
	}
	send_response(c, resp, resp_len);
	phsm_wipe(resp, resp_len);	/* plaintext, key values */
	free(resp);
}

/*
 * Answer a request the daemon decides itself (transport housekeeping):
 * a bare header with @status and CKR_OK.
 */
static void answer_status(struct conn *c, const struct phsm_msg *m,
			  uint32_t status)
{
	struct phsm_writer w = { 0 };

	if (!phsm_msg_begin(&w, m->opcode, PHSM_MSG_F_RESPONSE, m->app_ctx,
			    m->tag) ||
	    !phsm_msg_finish(&w, status, 0)) {
		phsm_writer_free(&w);
		logmsg("out of memory answering a request; dropping the connection");
		shutdown(c->fd, SHUT_RDWR);
		return;
	}
	send_response(c, w.data, w.len);
	phsm_writer_free(&w);
}

/* ---- workers ---------------------------------------------------------- */

static void enqueue(struct job *j);

static void job_free(struct job *j)
{
	phsm_wipe(j->req, j->len);	/* PINs, plaintext */
	free(j->req);
	free(j);
}

/* Run a job: a request, or a bridge context's deferred APP_CLOSE. */
static void job_run(struct job *j)
{
	answer(j->conn, j->app, j->req, j->len);
	if (j->close) {
		/* Its requests are done (the close waited for them). */
		fw_card_app_close(card, j->app);
		free(j->ctx);
		j->ctx = NULL;
	}
}

static void job_done(struct job *j)
{
	struct conn *c = j->conn;
	struct job *close_job = NULL;

	pthread_mutex_lock(&c->lock);
	c->inflight--;
	c->queued -= j->len;
	if (j->ctx && !j->close && --j->ctx->inflight == 0) {
		close_job = j->ctx->close_job;
		j->ctx->close_job = NULL;
	}
	pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->lock);
	if (close_job)
		enqueue(close_job);
}

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		struct job *j;

		pthread_mutex_lock(&queue_lock);
		while (!queue_head && !stopping)
			pthread_cond_wait(&queue_cond, &queue_lock);
		j = queue_head;
		if (!j) {
			pthread_mutex_unlock(&queue_lock);
			return NULL;
		}
		queue_head = j->next;
		if (!queue_head)
			queue_tail = NULL;
		pthread_mutex_unlock(&queue_lock);

		job_run(j);
		job_done(j);
		job_free(j);
	}
}

static void enqueue(struct job *j)
{
	pthread_mutex_lock(&queue_lock);
	j->next = NULL;
	if (queue_tail)
		queue_tail->next = j;
	else
		queue_head = j;
	queue_tail = j;
	pthread_cond_signal(&queue_cond);
	pthread_mutex_unlock(&queue_lock);
}

/* ---- connections ------------------------------------------------------ */

/* Wait until fewer than @limit requests of @c are in flight. */
static void wait_inflight(struct conn *c, unsigned int limit)
{
	pthread_mutex_lock(&c->lock);
	while (c->inflight >= limit)
		pthread_cond_wait(&c->idle, &c->lock);
	pthread_mutex_unlock(&c->lock);
}

/*
 * Read one framed request.  Returns the request, or NULL at the end of
 * the connection.  A header that cannot be framed is answered (the
 * card explains what is wrong with it) and ends the connection.
 */
static uint8_t *read_request(struct conn *c, size_t *len, int *fd)
{
	uint8_t hdr[HDR_LEN], *req;
	uint32_t n;

	if (!read_full_fd(c->fd, hdr, sizeof(hdr), fd))
		return NULL;
	n = phsm_msg_peek_length(hdr, sizeof(hdr));
	if (n == 0) {
		answer(c, c->app, hdr, sizeof(hdr));
		return NULL;
	}
	/* Bound the memory one client can pin with queued requests. */
	pthread_mutex_lock(&c->lock);
	while (c->inflight && c->queued + n > QUEUED_MAX)
		pthread_cond_wait(&c->idle, &c->lock);
	pthread_mutex_unlock(&c->lock);
	req = malloc(n);
	if (!req) {
		logmsg("out of memory for a %u-byte request", n);
		return NULL;
	}
	memcpy(req, hdr, sizeof(hdr));
	if (!read_full(c->fd, req + sizeof(hdr), n - sizeof(hdr))) {
		phsm_wipe(req, n);	/* what came may be part of a PIN */
		free(req);
		return NULL;
	}
	*len = n;
	return req;
}

/*
 * PHSM_OP_SHM_ATTACH, answered at once by the reader (which alone touches
 * the connection's channel list).  @fd is consumed.
 */
static void shm_attach_request(struct conn *c, const struct phsm_msg *m,
			       int fd)
{
	struct phsm_writer w = { 0 };
	uint32_t status, rv = 0;

	if (c->bridge) {
		status = PHSM_ST_BAD_CONTEXT;
	} else if (m->payload.left) {
		status = PHSM_ST_TRAILING;
	} else {
		status = shm_attach(card, c->app, fd, &c->chans, &c->nchans,
				    &rv);
		fd = -1;
	}
	if (fd >= 0)
		close(fd);
	if (!phsm_msg_begin(&w, m->opcode, PHSM_MSG_F_RESPONSE, m->app_ctx,
			    m->tag) ||
	    !phsm_msg_finish(&w, status, status == PHSM_ST_OK ? rv : 0)) {
		phsm_writer_free(&w);
		shutdown(c->fd, SHUT_RDWR);
		return;
	}
	send_response(c, w.data, w.len);
	phsm_writer_free(&w);
}

static void conn_unlist(struct conn *c)
{
	struct conn **pp;

	pthread_mutex_lock(&conns_lock);
	for (pp = &conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	nconns--;
	pthread_cond_broadcast(&conns_cond);
	pthread_mutex_unlock(&conns_lock);
}

/* ---- bridge contexts --------------------------------------------------- */

static struct bctx **bctx_slot(struct conn *c, uint64_t id)
{
	struct bctx **pp = &c->ctx[(id ^ id >> 8 ^ id >> 32) % BRIDGE_BUCKETS];

	while (*pp && (*pp)->id != id)
		pp = &(*pp)->next;
	return pp;
}

/* APP_OPEN on a bridge connection: answered at once, by the reader. */
static void bridge_open(struct conn *c, const struct phsm_msg *m)
{
	struct bctx **pp, *x;
	uint32_t status = PHSM_ST_OK;

	if (m->payload.left) {
		answer_status(c, m, PHSM_ST_TRAILING);
		return;
	}
	pthread_mutex_lock(&c->lock);
	pp = bctx_slot(c, m->app_ctx);
	if (m->app_ctx == 0 || *pp)
		status = PHSM_ST_BAD_CONTEXT;
	else if (c->nctx >= BRIDGE_CTX_MAX)
		status = PHSM_ST_NO_MEMORY;
	pthread_mutex_unlock(&c->lock);
	if (status != PHSM_ST_OK) {
		answer_status(c, m, status);
		return;
	}
	x = calloc(1, sizeof(*x));
	if (x)
		x->app = fw_card_app_open(card);
	if (!x || !x->app) {
		free(x);
		answer_status(c, m, PHSM_ST_NO_MEMORY);
		return;
	}
	x->id = m->app_ctx;
	/* Only this thread adds contexts: the slot is still free. */
	pthread_mutex_lock(&c->lock);
	pp = bctx_slot(c, m->app_ctx);
	*pp = x;
	c->nctx++;
	pthread_mutex_unlock(&c->lock);
	answer_status(c, m, PHSM_ST_OK);
}

/*
 * Route a bridge request to its context.  APP_CLOSE takes the context out
 * of the table at once (later requests for it are PHSM_ST_BAD_CONTEXT)
 * and runs once the context's requests in flight are done.  A request
 * for a context that is not open runs in no context, which the card
 * answers with PHSM_ST_BAD_CONTEXT.  Returns false if @j must not be
 * queued now (a deferred close).
 */
static bool bridge_route(struct conn *c, struct job *j,
			 const struct phsm_msg *m)
{
	struct bctx **pp, *x;
	bool now = true;

	pthread_mutex_lock(&c->lock);
	pp = bctx_slot(c, m->app_ctx);
	x = *pp;
	if (x) {
		j->app = x->app;
		j->ctx = x;
		if (m->opcode == PHSM_OP_APP_CLOSE) {
			*pp = x->next;
			c->nctx--;
			j->close = true;
			if (x->inflight) {
				x->close_job = j;
				now = false;
			}
		} else {
			x->inflight++;
		}
	} else {
		j->app = 0;
	}
	c->inflight++;
	c->queued += j->len;
	pthread_mutex_unlock(&c->lock);
	return now;
}

/* The end of a bridge connection: close the contexts left open. */
static void bridge_close_all(struct conn *c)
{
	for (size_t b = 0; b < BRIDGE_BUCKETS; b++) {
		while (c->ctx[b]) {
			struct bctx *x = c->ctx[b];

			c->ctx[b] = x->next;
			fw_card_app_close(card, x->app);
			free(x);
		}
	}
	c->nctx = 0;
}

/*
 * Dispatch one request read by the reader.  Returns false if the
 * connection must end.
 */
static bool dispatch(struct conn *c, uint8_t *req, size_t len, int fd)
{
	struct phsm_msg m;
	uint32_t status = phsm_msg_parse(req, len, false, &m);
	struct job *j;

	if (status == PHSM_ST_OK && m.opcode == PHSM_OP_SHM_ATTACH) {
		shm_attach_request(c, &m, fd);
		free(req);
		return true;
	}
	/* A descriptor that came with anything else is not ours to keep. */
	if (fd >= 0)
		close(fd);
	if (status == PHSM_ST_OK && m.opcode == PHSM_OP_APP_OPEN) {
		if (c->bridge)
			bridge_open(c, &m);
		else
			answer_status(c, &m, PHSM_ST_BAD_CONTEXT);
		free(req);
		return true;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		free(req);
		return false;
	}
	j->conn = c;
	j->req = req;
	j->len = len;
	if (c->bridge && status == PHSM_ST_OK) {
		if (!bridge_route(c, j, &m))
			return true;
	} else {
		/* Malformed requests are answered by the card. */
		j->app = c->app;
		pthread_mutex_lock(&c->lock);
		c->inflight++;
		c->queued += len;
		pthread_mutex_unlock(&c->lock);
	}
	enqueue(j);
	return true;
}

static void *reader(void *arg)
{
	struct conn *c = arg;

	for (;;) {
		uint8_t *req;
		size_t len = 0;
		int fd = -1;

		wait_inflight(c, c->inflight_max);
		req = read_request(c, &len, &fd);
		if (!req) {
			if (fd >= 0)
				close(fd);
			break;
		}
		if (!dispatch(c, req, len, fd))
			break;
	}
	/*
	 * Stop the channels and let the requests in flight finish, then
	 * forget the applications.
	 */
	shm_detach_all(&c->chans, &c->nchans);
	wait_inflight(c, 1);
	if (c->bridge)
		bridge_close_all(c);
	else
		fw_card_app_close(card, c->app);
	close(c->fd);
	conn_unlist(c);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->idle);
	free(c);
	return NULL;
}

static void start_conn(int fd, bool bridge)
{
	struct conn *c = calloc(1, sizeof(*c));
	pthread_attr_t attr;
	pthread_t t;

	if (!c) {
		close(fd);
		return;
	}
	/*
	 * A client that stops reading its answers must not hold a worker
	 * forever: a write that cannot progress for this long gives up and
	 * ends the connection.
	 */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout,
		   sizeof(send_timeout));
	c->fd = fd;
	c->bridge = bridge;
	c->inflight_max = bridge ? BRIDGE_INFLIGHT_MAX : INFLIGHT_MAX;
	/* A bridge connection has no context of its own (0 is none). */
	c->app = bridge ? 0 : fw_card_app_open(card);
	if (!bridge && !c->app) {
		free(c);
		close(fd);
		return;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->idle, NULL);
	pthread_mutex_lock(&conns_lock);
	c->next = conns;
	conns = c;
	nconns++;
	pthread_mutex_unlock(&conns_lock);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, reader, c)) {
		logmsg("cannot start a connection thread");
		pthread_attr_destroy(&attr);
		if (c->app)
			fw_card_app_close(card, c->app);
		close(fd);
		conn_unlist(c);
		pthread_mutex_destroy(&c->lock);
		pthread_cond_destroy(&c->idle);
		free(c);
		return;
	}
	pthread_attr_destroy(&attr);
}

/* End every connection and wait for their readers to clean up. */
static void end_connections(void)
{
	pthread_mutex_lock(&conns_lock);
	for (struct conn *c = conns; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	while (nconns)
		pthread_cond_wait(&conns_cond, &conns_lock);
	pthread_mutex_unlock(&conns_lock);
}

/* ---- the socket ------------------------------------------------------- */

/*
 * Remove a socket file left by a daemon that is gone; refuse to touch a
 * path that is not a socket or that a live daemon still answers on.
 */
static int clear_stale_socket(const struct sockaddr_un *sa)
{
	struct stat sb;
	int fd, rc;

	if (lstat(sa->sun_path, &sb)) {
		if (errno == ENOENT)
			return 0;
		logmsg("%s: %s", sa->sun_path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(sb.st_mode)) {
		logmsg("%s exists and is not a socket", sa->sun_path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (rc == 0) {
		logmsg("another phsm-fw is serving %s", sa->sun_path);
		return -1;
	}
	if (unlink(sa->sun_path) && errno != ENOENT) {
		logmsg("cannot remove stale %s: %s", sa->sun_path,
		       strerror(errno));
		return -1;
	}
	return 0;
}

static int listen_on(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		logmsg("socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	if (clear_stale_socket(&sa))
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		logmsg("socket: %s", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(fd, 64)) {
		logmsg("cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;

	if (write(wake_pipe[1], &c, 1) < 0) {
		/* The pipe is full: a wake-up is pending anyway. */
	}
	errno = saved;
}

static int setup_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK))
		return -1;
	sigemptyset(&sa.sa_mask);
	signal(SIGPIPE, SIG_IGN);
	if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL))
		return -1;
	return 0;
}

static void accept_one(int lfd, bool bridge)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0) {
		if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
			logmsg("accept: %s", strerror(errno));
		if (errno == EMFILE || errno == ENFILE)
			usleep(100000);	/* let connections end */
		return;
	}
	start_conn(fd, bridge);
}

/*
 * Accept clients until SIGTERM or SIGINT: plain ones on @lfd, bridges on
 * @bfd (either may be -1).
 */
static void serve(int lfd, int bfd)
{
	struct pollfd p[3] = {
		{ .fd = wake_pipe[0], .events = POLLIN },
		{ .fd = lfd, .events = POLLIN },
		{ .fd = bfd, .events = POLLIN },
	};

	for (;;) {
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			logmsg("poll: %s", strerror(errno));
			return;
		}
		if (p[0].revents)
			return;
		if (p[1].revents & POLLIN)
			accept_one(lfd, false);
		if (p[2].revents & POLLIN)
			accept_one(bfd, true);
	}
}

/* ---- main ------------------------------------------------------------- */

struct options {
	const char *state;
	const char *socket;
	const char *bridge;
	unsigned int partitions;
	unsigned int pin_iterations;
	unsigned int workers;
	const char *cluster_id;
	const char *mfg_init;
	const char *mfg;
	unsigned int device_curve;
	unsigned int negotiation_timeout;
	unsigned int session_lifetime;
	long clock_offset;
	unsigned int suites;
	unsigned int kdfs;
	unsigned int encodings;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: phsm-fw --state DIR {--socket PATH | --bridge PATH} [options]\n"
		"       phsm-fw --mfg-init MFG\n"
		"\n"
		"Run the firmware of one simulated phsm card in the foreground.\n"
		"\n"
		"  --state DIR            card state (store, master key); created if missing\n"
		"  --socket PATH          Unix socket the clients connect to\n"
		"  --bridge PATH          Unix socket for the QEMU device (many contexts\n"
		"                         per connection, see phsm_proto.h)\n"
		"  --partitions N         tokens on the card, 1..16 (default 2)\n"
		"  --pin-iterations N     PBKDF2 rounds for new PINs (default 100000)\n"
		"  --workers N            request threads (default: CPUs, at least 2)\n"
		"  --cluster-id ID        cluster of partitions created now (original label\n"
		"                         phsm-ID-N; default: the card's serial number)\n"
		"\n"
		"Key cloning (Documentation/phsm/cloning.rst):\n"
		"  --mfg-init MFG         create the simulated manufacturer CA in directory\n"
		"                         MFG if it has none (never replaced), then exit\n"
		"  --mfg MFG              provision the card's device identity from MFG at\n"
		"                         start if it has none yet (without: no cloning)\n"
		"  --device-curve CURVE   device key of a new identity: p256 (default), p384\n"
		"  --clone-negotiation-timeout S\n"
		"                         CPv4 negotiations expire after S seconds (600)\n"
		"  --clone-session-lifetime S\n"
		"                         longest clone session offered, seconds (3600)\n"
		"  --clock-offset S       seconds added to the card clock, may be negative\n"
		"                         (tests; default 0)\n"
		"  --clone-suites LIST    test knobs: comma-separated values offered and\n"
		"  --clone-kdfs LIST      accepted in negotiations (default: all the card\n"
		"  --clone-encodings LIST knows; suites 1 P-256, 2 P-384; KDFs 1 SHA-256,\n"
		"                         2 SHA-384; encodings 1)\n"
		"\n"
		"  --help                 this text\n");
}

static bool parse_uint(const char *s, unsigned int min, unsigned int max,
		       unsigned int *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		return false;
	*out = (unsigned int)v;
	return true;
}

static bool parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* "1,2,5": one bit (1 << value) per value, values 1..31. */
static bool parse_list(const char *s, unsigned int *out)
{
	unsigned int bits = 0, v;
	char buf[128], *tok, *save = NULL;
	size_t len = strlen(s);

	/* strtok_r would skip empty elements: refuse them first. */
	if (!len || len >= sizeof(buf) || s[0] == ',' || s[len - 1] == ',' ||
	    strstr(s, ",,"))
		return false;
	memcpy(buf, s, len + 1);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!parse_uint(tok, 1, 31, &v))
			return false;
		bits |= 1u << v;
	}
	*out = bits;
	return bits != 0;
}

#define YEAR	(365u * 86400)

/* The cloning options; 0 if c is none of them, -1 on a bad value. */
static int parse_clone_opt(int c, struct options *o)
{
	unsigned int *list = c == 'U' ? &o->suites : c == 'K' ? &o->kdfs :
			     c == 'E' ? &o->encodings : NULL;

	switch (c) {
	case 'M':
		o->mfg_init = optarg;
		return 1;
	case 'm':
		o->mfg = optarg;
		return 1;
	case 'd':
		if (!strcmp(optarg, "p256"))
			o->device_curve = 256;
		else if (!strcmp(optarg, "p384"))
			o->device_curve = 384;
		else
			goto bad;
		return 1;
	case 'n':
		if (parse_uint(optarg, 1, YEAR, &o->negotiation_timeout))
			return 1;
		logmsg("--clone-negotiation-timeout: want 1..%u seconds, got '%s'",
		       YEAR, optarg);
		return -1;
	case 'l':
		if (parse_uint(optarg, 1, YEAR, &o->session_lifetime))
			return 1;
		logmsg("--clone-session-lifetime: want 1..%u seconds, got '%s'",
		       YEAR, optarg);
		return -1;
	case 'o':
		if (parse_long(optarg, -10L * YEAR, 10L * YEAR, &o->clock_offset))
			return 1;
		logmsg("--clock-offset: want seconds within ten years, got '%s'",
		       optarg);
		return -1;
	case 'U':
	case 'K':
	case 'E':
		if (parse_list(optarg, list))
			return 1;
		logmsg("--clone-%s: want a comma-separated list of 1..31, got '%s'",
		       c == 'U' ? "suites" : c == 'K' ? "kdfs" : "encodings",
		       optarg);
		return -1;
	default:
		return 0;
	}
bad:
	logmsg("--device-curve: want p256 or p384, got '%s'", optarg);
	return -1;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "socket", required_argument, NULL, 'S' },
		{ "bridge", required_argument, NULL, 'b' },
		{ "partitions", required_argument, NULL, 'p' },
		{ "pin-iterations", required_argument, NULL, 'i' },
		{ "workers", required_argument, NULL, 'w' },
		{ "cluster-id", required_argument, NULL, 'c' },
		{ "mfg-init", required_argument, NULL, 'M' },
		{ "mfg", required_argument, NULL, 'm' },
		{ "device-curve", required_argument, NULL, 'd' },
		{ "clone-negotiation-timeout", required_argument, NULL, 'n' },
		{ "clone-session-lifetime", required_argument, NULL, 'l' },
		{ "clock-offset", required_argument, NULL, 'o' },
		{ "clone-suites", required_argument, NULL, 'U' },
		{ "clone-kdfs", required_argument, NULL, 'K' },
		{ "clone-encodings", required_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, got, nopts = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		nopts++;
		got = parse_clone_opt(c, o);
		if (got < 0)
			return -1;
		if (got)
			continue;
		switch (c) {
		case 's':
			o->state = optarg;
			break;
		case 'S':
			o->socket = optarg;
			break;
		case 'b':
			o->bridge = optarg;
			break;
		case 'p':
			if (!parse_uint(optarg, 1, 16, &o->partitions)) {
				logmsg("--partitions: want 1..16, got '%s'", optarg);
				return -1;
			}
			break;
		case 'i':
			if (!parse_uint(optarg, 1, 100000000, &o->pin_iterations)) {
				logmsg("--pin-iterations: want 1..100000000, got '%s'",
				       optarg);
				return -1;
			}
			break;
		case 'w':
			if (!parse_uint(optarg, 1, 256, &o->workers)) {
				logmsg("--workers: want 1..256, got '%s'", optarg);
				return -1;
			}
			break;
		case 'c':
			o->cluster_id = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			logmsg("unknown or incomplete option '%s'",
			       argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		logmsg("unexpected argument '%s'", argv[optind]);
		return -1;
	}
	/* Provisioning the manufacturer is a job of its own. */
	if (o->mfg_init) {
		if (nopts != 1) {
			logmsg("--mfg-init takes no other option");
			return -1;
		}
		return 0;
	}
	if (!o->state || (!o->socket && !o->bridge)) {
		logmsg("--state and --socket or --bridge (or both) are required");
		return -1;
	}
	if (o->socket && o->bridge && !strcmp(o->socket, o->bridge)) {
		logmsg("--socket and --bridge must differ");
		return -1;
	}
	return 0;
}

static unsigned int default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 2 ? 2 : n > 256 ? 256 : (unsigned int)n;
}

int main(int argc, char **argv)
{
	struct options o = { .partitions = 2 };
	struct fw_card_config cfg;
	pthread_t *pool;
	char err[512] = "";
	int lfd = -1, bfd = -1;

	if (parse_args(argc, argv, &o)) {
		fprintf(stderr, "usage: phsm-fw --state DIR {--socket PATH |"
			" --bridge PATH} [options]; see phsm-fw --help\n");
		return EXIT_USAGE;
	}
	if (o.mfg_init) {
		if (fw_mfg_init(o.mfg_init, err, sizeof(err))) {
			logmsg("--mfg-init %s: %s", o.mfg_init, err);
			return 1;
		}
		return 0;
	}
	if (!o.workers)
		o.workers = default_workers();
	if (setup_signals()) {
		logmsg("cannot set up signals: %s", strerror(errno));
		return 1;
	}
	cfg = (struct fw_card_config){
		.state_dir = o.state,
		.partitions = o.partitions,
		.pin_iterations = o.pin_iterations,
		.cluster_id = o.cluster_id,
		.mfg_dir = o.mfg,
		.device_curve = o.device_curve,
		.clone_negotiation_timeout = o.negotiation_timeout,
		.clone_session_lifetime = o.session_lifetime,
		.clock_offset = o.clock_offset,
		.clone_suites = o.suites,
		.clone_kdfs = o.kdfs,
		.clone_encodings = o.encodings,
	};
	if (fw_card_open(&cfg, &card, err, sizeof(err))) {
		logmsg("cannot open the card: %s", err);
		return 1;
	}
	if (o.socket)
		lfd = listen_on(o.socket);
	if (o.bridge && (!o.socket || lfd >= 0))
		bfd = listen_on(o.bridge);
	if ((o.socket && lfd < 0) || (o.bridge && bfd < 0)) {
		if (lfd >= 0) {
			close(lfd);
			unlink(o.socket);
		}
		fw_card_close(card);
		return 1;
	}
	pool = calloc(o.workers, sizeof(*pool));
	for (unsigned int i = 0; pool && i < o.workers; i++) {
		if (pthread_create(&pool[i], NULL, worker, NULL)) {
			logmsg("cannot start worker threads");
			return 1;
		}
	}
	if (!pool) {
		logmsg("out of memory");
		return 1;
	}
	logmsg("serving %u partition(s) on %s%s%s (state %s, %u workers)",
	       o.partitions, o.socket ? o.socket : "",
	       o.socket && o.bridge ? " and bridge " : o.bridge ? "bridge " : "",
	       o.bridge ? o.bridge : "", o.state, o.workers);

	serve(lfd, bfd);

	logmsg("shutting down");
	if (lfd >= 0) {
		close(lfd);
		unlink(o.socket);
	}
	if (bfd >= 0) {
		close(bfd);
		unlink(o.bridge);
	}
	end_connections();
	pthread_mutex_lock(&queue_lock);
	stopping = true;
	pthread_cond_broadcast(&queue_cond);
	pthread_mutex_unlock(&queue_lock);
	for (unsigned int i = 0; i < o.workers; i++)
		pthread_join(pool[i], NULL);
	free(pool);
	fw_card_close(card);
	return 0;
}
