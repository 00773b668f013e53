// SPDX-License-Identifier: MIT
/*
 * phsm-fw: the card firmware as a daemon.  One process is one card; its
 * clients connect to a Unix socket, and each connection is one
 * application context.
 *
 * Threads: the main thread accepts connections; each connection has a
 * reader thread that frames requests and queues them for a small pool of
 * workers, so that requests of one connection (sent by different threads
 * of the client, told apart by their tags) run in parallel.  A worker
 * writes its response whole under the connection's write lock.  When a
 * connection ends, its reader waits for the requests still in flight and
 * then closes the application context.
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

#define HDR_LEN		sizeof(struct phsm_msg_hdr)
#define INFLIGHT_MAX	64	/* queued requests per connection */
#define QUEUED_MAX	(64u << 20)	/* queued request bytes per connection */
#define EXIT_USAGE	2

static const struct timeval send_timeout = { .tv_sec = 30 };

struct conn {
	int fd;
	uint64_t app;
	pthread_mutex_t lock;	/* inflight, write side */
	pthread_cond_t idle;
	unsigned int inflight;
	size_t queued;		/* bytes of the requests in flight */
	bool broken;		/* a write failed: stop reading too */
	struct conn *next;	/* the daemon's list */
};

struct job {
	struct conn *conn;
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

/* Answer one request on its connection, whole, under the write lock. */
static void answer(struct conn *c, const uint8_t *req, size_t len)
{
	uint8_t *resp = NULL;
	size_t resp_len = 0;
	bool ok;

	if (fw_card_handle(card, c->app, req, len, &resp, &resp_len)) {
		logmsg("out of memory answering a request; dropping the connection");
		shutdown(c->fd, SHUT_RDWR);
		return;
	}
	pthread_mutex_lock(&c->lock);
	ok = !c->broken && write_full(c->fd, resp, resp_len);
	if (!ok && !c->broken) {
		c->broken = true;
		shutdown(c->fd, SHUT_RDWR);	/* wakes the reader */
	}
	pthread_mutex_unlock(&c->lock);
	free(resp);
}

/* ---- workers ---------------------------------------------------------- */

static void job_done(struct conn *c, size_t len)
{
	pthread_mutex_lock(&c->lock);
	c->inflight--;
	c->queued -= len;
	pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->lock);
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

		answer(j->conn, j->req, j->len);
		job_done(j->conn, j->len);
		free(j->req);
		free(j);
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
static uint8_t *read_request(struct conn *c, size_t *len)
{
	uint8_t hdr[HDR_LEN], *req;
	uint32_t n;

	if (!read_full(c->fd, hdr, sizeof(hdr)))
		return NULL;
	n = phsm_msg_peek_length(hdr, sizeof(hdr));
	if (n == 0) {
		answer(c, hdr, sizeof(hdr));
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
		free(req);
		return NULL;
	}
	*len = n;
	return req;
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

static void *reader(void *arg)
{
	struct conn *c = arg;

	for (;;) {
		struct job *j;
		uint8_t *req;
		size_t len = 0;

		wait_inflight(c, INFLIGHT_MAX);
		req = read_request(c, &len);
		if (!req)
			break;
		j = malloc(sizeof(*j));
		if (!j) {
			free(req);
			break;
		}
		j->conn = c;
		j->req = req;
		j->len = len;
		pthread_mutex_lock(&c->lock);
		c->inflight++;
		c->queued += len;
		pthread_mutex_unlock(&c->lock);
		enqueue(j);
	}
	/* Let the requests in flight finish, then forget the application. */
	wait_inflight(c, 1);
	fw_card_app_close(card, c->app);
	close(c->fd);
	conn_unlist(c);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->idle);
	free(c);
	return NULL;
}

static void start_conn(int fd)
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
	c->app = fw_card_app_open(card);
	if (!c->app) {
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

/* Accept clients until SIGTERM or SIGINT. */
static void serve(int lfd)
{
	struct pollfd p[2] = {
		{ .fd = lfd, .events = POLLIN },
		{ .fd = wake_pipe[0], .events = POLLIN },
	};

	for (;;) {
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			logmsg("poll: %s", strerror(errno));
			return;
		}
		if (p[1].revents)
			return;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EINTR && errno != EAGAIN &&
			    errno != ECONNABORTED)
				logmsg("accept: %s", strerror(errno));
			if (errno == EMFILE || errno == ENFILE)
				usleep(100000);	/* let connections end */
			continue;
		}
		start_conn(fd);
	}
}

/* ---- main ------------------------------------------------------------- */

struct options {
	const char *state;
	const char *socket;
	unsigned int partitions;
	unsigned int pin_iterations;
	unsigned int workers;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: phsm-fw --state DIR --socket PATH [options]\n"
		"\n"
		"Run the firmware of one simulated phsm card in the foreground.\n"
		"\n"
		"  --state DIR            card state (store, master key); created if missing\n"
		"  --socket PATH          Unix socket the clients connect to\n"
		"  --partitions N         tokens on the card, 1..16 (default 2)\n"
		"  --pin-iterations N     PBKDF2 rounds for new PINs (default 100000)\n"
		"  --workers N            request threads (default: CPUs, at least 2)\n"
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

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "socket", required_argument, NULL, 'S' },
		{ "partitions", required_argument, NULL, 'p' },
		{ "pin-iterations", required_argument, NULL, 'i' },
		{ "workers", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->state = optarg;
			break;
		case 'S':
			o->socket = optarg;
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
	if (!o->state || !o->socket) {
		logmsg("--state and --socket are required");
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
	int lfd;

	if (parse_args(argc, argv, &o)) {
		fprintf(stderr, "usage: phsm-fw --state DIR --socket PATH"
			" [options]; see phsm-fw --help\n");
		return EXIT_USAGE;
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
	};
	if (fw_card_open(&cfg, &card, err, sizeof(err))) {
		logmsg("cannot open the card: %s", err);
		return 1;
	}
	lfd = listen_on(o.socket);
	if (lfd < 0) {
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
	logmsg("serving %u partition(s) on %s (state %s, %u workers)",
	       o.partitions, o.socket, o.state, o.workers);

	serve(lfd);

	logmsg("shutting down");
	close(lfd);
	unlink(o.socket);
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
