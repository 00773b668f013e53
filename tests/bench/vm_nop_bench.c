// SPDX-License-Identifier: MIT
/*
 * The device path of the benchmark (issue 5), run inside the VM guest by
 * `make vm-bench`: PHSM_OP_NOP commands per second through /dev/phsmN at
 * queue depth 1 (PHSM_IOCTL_SUBMIT, one command at a time) and at depth D
 * (D PHSM_IOCTL_SUBMIT_ASYNC commands kept in flight, completions read()),
 * and where the time of one depth-1 command goes, from kprobes on the
 * driver (tracefs):
 *
 *   phb_in   phsm_ioctl entry             the ioctl reached the driver
 *   phb_db   phsm_submit_locked return    the entry is in the SQ and the
 *                                         doorbell written
 *   phb_cq   phsm_process_cq entry        the completion interrupt
 *   phb_out  phsm_ioctl return            the driver is done
 *
 * phb_db -> phb_cq is the device model (QEMU, host code), the bridge
 * socket and phsm-fw, plus the MMIO exit and the interrupt delivery; the
 * rest of the ioctl is the driver; what is left of a command's time is the
 * system call and this loop.  The driver and the device are not changed
 * for this.  Nothing is asserted about timing: the exit status is 0 when
 * every command got its right answer.
 *
 *   vm_nop_bench [--dev PATH] [--seconds S] [--depth D] [--trace N]
 *
 * Results are lines "phsm-bench: KEY=VALUE ..." on standard output
 * (Documentation/phsm/bench.rst, "The device path").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "uapi/phsm_ioctl.h"
#include "uapi/phsm_proto.h"
#include "uapi/codec/phsm_codec.h"

#define RESP_CAP	256	/* a NOP answer is a bare 40-byte header */
#define MAX_DEPTH	64	/* PHSM_DRV_MAX_ASYNC */
#ifndef TRACEFS
#define TRACEFS		"/sys/kernel/tracing"
#endif
#define KGROUP		"phsmbench"

struct opts {
	const char *dev;
	double seconds;
	unsigned int depth;
	unsigned int trace;
};

struct req {
	uint8_t *msg;
	uint32_t len;
	uint32_t tag;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int make_nop(struct req *r, uint32_t tag)
{
	struct phsm_writer w = { 0 };

	phsm_msg_begin(&w, PHSM_OP_NOP, 0, 0, tag);
	if (!phsm_msg_finish(&w, 0, 0)) {
		phsm_writer_free(&w);
		return -ENOMEM;
	}
	r->msg = w.data;
	r->len = (uint32_t)w.len;
	r->tag = tag;
	return 0;
}

/* The answer to NOP @tag: well framed, status OK, CKR_OK, no payload. */
static bool nop_answer_ok(const void *resp, uint32_t len, uint32_t tag)
{
	struct phsm_msg m;

	if (len > RESP_CAP || phsm_msg_parse(resp, len, true, &m) != PHSM_ST_OK)
		return false;
	return (m.flags & PHSM_MSG_F_RESPONSE) && m.opcode == PHSM_OP_NOP &&
	       m.tag == tag && m.status == PHSM_ST_OK && m.rv == 0 &&
	       m.payload.left == 0;
}

static int nop_sync(int fd, const struct req *r, uint8_t *resp)
{
	struct phsm_ioctl_submit s = {
		.req_ptr = (uintptr_t)r->msg,
		.resp_ptr = (uintptr_t)resp,
		.req_len = r->len,
		.resp_cap = RESP_CAP,
	};

	if (ioctl(fd, PHSM_IOCTL_SUBMIT, &s))
		return -errno;
	return nop_answer_ok(resp, s.resp_len, r->tag) ? 0 : -EPROTO;
}

static int nop_async(int fd, const struct req *r, uint8_t *resp,
		     uint64_t slot)
{
	struct phsm_ioctl_submit_async a = {
		.req_ptr = (uintptr_t)r->msg,
		.resp_ptr = (uintptr_t)resp,
		.user_data = slot,
		.req_len = r->len,
		.resp_cap = RESP_CAP,
	};

	return ioctl(fd, PHSM_IOCTL_SUBMIT_ASYNC, &a) ? -errno : 0;
}

/* The driver's count of commands sent to the card (sysfs); -1 if unknown. */
static long long driver_commands(const char *dev)
{
	const char *name = strrchr(dev, '/');
	char path[256], buf[64];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/phsm/%s/commands",
		 name ? name + 1 : dev);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f))
		v = strtoll(buf, NULL, 10);
	fclose(f);
	return v;
}

static void report_rate(unsigned int depth, unsigned long long n, double t,
			long long drv_cmds)
{
	printf("phsm-bench: depth=%u cmds=%llu seconds=%.3f cmds_per_s=%.0f "
	       "us_per_cmd=%.2f driver_cmds=%lld\n", depth, n, t,
	       t > 0 ? (double)n / t : 0.0, n ? t * 1e6 / (double)n : 0.0,
	       drv_cmds);
	fflush(stdout);
}

static int bench_depth1(int fd, const struct opts *o)
{
	uint8_t resp[RESP_CAP];
	unsigned long long n = 0;
	long long c0 = driver_commands(o->dev), c1;
	struct req r;
	double t0, t1, end;
	int ret = 0;

	if (make_nop(&r, 0x10000))
		return -ENOMEM;
	t0 = t1 = now_s();
	end = t0 + o->seconds;
	do {
		ret = nop_sync(fd, &r, resp);
		if (ret)
			break;
		n++;
		t1 = now_s();
	} while (t1 < end);
	c1 = driver_commands(o->dev);
	free(r.msg);
	if (ret) {
		fprintf(stderr, "depth 1: NOP %llu failed: %s\n", n,
			strerror(-ret));
		return ret;
	}
	report_rate(1, n, t1 - t0, c0 >= 0 && c1 >= 0 ? c1 - c0 : -1);
	return 0;
}

/* Check and count the completions in @recs; resubmit while time is left. */
static int reap(int fd, const struct phsm_completion *recs, size_t k,
		struct req *reqs, uint8_t (*resp)[RESP_CAP], bool more,
		unsigned int *inflight, unsigned long long *n)
{
	size_t i;
	int ret;

	for (i = 0; i < k; i++) {
		uint64_t slot = recs[i].user_data;

		if (slot >= MAX_DEPTH || recs[i].error ||
		    !nop_answer_ok(resp[slot], recs[i].resp_len,
				   reqs[slot].tag)) {
			fprintf(stderr, "depth: completion %llu bad (slot %llu, "
				"error %d)\n", *n, (unsigned long long)slot,
				recs[i].error);
			return -EPROTO;
		}
		(*n)++;
		(*inflight)--;
		if (!more)
			continue;
		ret = nop_async(fd, &reqs[slot], resp[slot], slot);
		if (ret)
			return ret;
		(*inflight)++;
	}
	return 0;
}

static int bench_depth(int fd, const struct opts *o)
{
	static uint8_t resp[MAX_DEPTH][RESP_CAP];
	struct phsm_completion recs[MAX_DEPTH];
	struct req reqs[MAX_DEPTH] = { 0 };
	unsigned long long n = 0;
	unsigned int i, inflight = 0;
	long long c0 = driver_commands(o->dev), c1;
	double t0, t1 = 0, end;
	int ret = 0;

	for (i = 0; i < o->depth; i++)
		if (make_nop(&reqs[i], 0x20000 + i)) {
			ret = -ENOMEM;
			goto out;
		}
	t0 = now_s();
	end = t0 + o->seconds;
	for (i = 0; i < o->depth; i++) {
		ret = nop_async(fd, &reqs[i], resp[i], i);
		if (ret)
			goto drain;
		inflight++;
	}
	while (inflight) {
		ssize_t got = read(fd, recs, sizeof(recs[0]) * inflight);

		if (got < 0) {
			ret = -errno;
			goto out;
		}
		t1 = now_s();
		ret = reap(fd, recs, (size_t)got / sizeof(recs[0]), reqs, resp,
			   t1 < end, &inflight, &n);
		if (ret)
			goto drain;
	}
	c1 = driver_commands(o->dev);
	report_rate(o->depth, n, t1 - t0, c0 >= 0 && c1 >= 0 ? c1 - c0 : -1);
	goto out;
drain:
	/* The commands in flight still complete; take them before closing. */
	while (inflight && read(fd, recs, sizeof(recs[0])) > 0)
		inflight--;
	fprintf(stderr, "depth %u: failed after %llu: %s\n", o->depth, n,
		strerror(-ret));
out:
	for (i = 0; i < o->depth; i++)
		free(reqs[i].msg);
	return ret;
}

/* tracefs */

static int tr_write(const char *file, const char *text, bool append)
{
	char path[256];
	size_t len = strlen(text);
	int fd, ret = 0;

	snprintf(path, sizeof(path), TRACEFS "/%s", file);
	fd = open(path, O_WRONLY | O_CLOEXEC | (append ? O_APPEND : O_TRUNC));
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		ret = errno ? -errno : -EIO;
	close(fd);
	return ret;
}

static void tr_teardown(void)
{
	tr_write("tracing_on", "0", false);
	tr_write("events/" KGROUP "/enable", "0", false);
	tr_write("kprobe_events", "-:" KGROUP "/phb_in\n", true);
	tr_write("kprobe_events", "-:" KGROUP "/phb_db\n", true);
	tr_write("kprobe_events", "-:" KGROUP "/phb_cq\n", true);
	tr_write("kprobe_events", "-:" KGROUP "/phb_out\n", true);
	tr_write("trace_clock", "local", false);
}

static int tr_setup(void)
{
	static const char *const probes[] = {
		"p:" KGROUP "/phb_in phsm_ioctl\n",
		"r:" KGROUP "/phb_db phsm_submit_locked\n",
		"p:" KGROUP "/phb_cq phsm_process_cq\n",
		"r:" KGROUP "/phb_out phsm_ioctl\n",
	};
	struct stat st;
	size_t i;
	int ret;

	if (stat(TRACEFS "/kprobe_events", &st) &&
	    mount("tracefs", TRACEFS, "tracefs", 0, NULL))
		return -errno;
	tr_teardown();
	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		ret = tr_write("kprobe_events", probes[i], true);
		if (ret)
			return ret;
	}
	if ((ret = tr_write("buffer_size_kb", "8192", false)) ||
	    (ret = tr_write("trace_clock", "mono", false)) ||
	    (ret = tr_write("trace", "", false)) ||
	    (ret = tr_write("events/" KGROUP "/enable", "1", false)))
		return ret;
	return tr_write("tracing_on", "1", false);
}

enum { EV_IN, EV_DB, EV_CQ, EV_OUT, EV_N };

struct split {
	double sum[EV_N];	/* in->db, db->cq, cq->out, in->out */
	unsigned long n, dropped;
	double *devfw;		/* db->cq of every command, for the median */
};

/* One trace line: which event, at what time (seconds); -1 if none. */
static int tr_event(const char *line, double *ts)
{
	static const char *const names[EV_N] = {
		": phb_in:", ": phb_db:", ": phb_cq:", ": phb_out:",
	};
	const char *p, *q;
	int ev;

	if (line[0] == '#')
		return -1;
	for (ev = 0; ev < EV_N; ev++)
		if ((p = strstr(line, names[ev])))
			break;
	if (ev == EV_N)
		return -1;
	/* "... 123.456789: phb_in: ...": the time ends at p. */
	for (q = p; q > line && q[-1] != ' '; q--)
		;
	*ts = strtod(q, NULL);
	return ev;
}

/* Commands whose four events came in order; the others are dropped. */
static int tr_collect(struct split *sp, unsigned int max)
{
	FILE *f = fopen(TRACEFS "/trace", "r");
	double t[EV_N] = { 0 }, ts;
	int want = EV_IN, ev;
	char line[512];

	if (!f)
		return -errno;
	sp->devfw = calloc(max ? max : 1, sizeof(double));
	if (!sp->devfw) {
		fclose(f);
		return -ENOMEM;
	}
	while (fgets(line, sizeof(line), f)) {
		ev = tr_event(line, &ts);
		if (ev < 0)
			continue;
		if (ev != want) {
			/* Another phsm_process_cq before the ioctl's end
			 * belongs to nothing we measure; anything else
			 * breaks the sequence. */
			if (ev == EV_CQ && want == EV_OUT)
				continue;
			sp->dropped++;
			want = EV_IN;
			if (ev != EV_IN)
				continue;
		}
		t[ev] = ts;
		if (ev != EV_OUT) {
			want = ev + 1;
			continue;
		}
		want = EV_IN;
		sp->sum[0] += t[EV_DB] - t[EV_IN];
		sp->sum[1] += t[EV_CQ] - t[EV_DB];
		sp->sum[2] += t[EV_OUT] - t[EV_CQ];
		sp->sum[3] += t[EV_OUT] - t[EV_IN];
		if (sp->n < max)
			sp->devfw[sp->n] = t[EV_CQ] - t[EV_DB];
		sp->n++;
	}
	fclose(f);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void report_split(const struct split *sp, double total_us,
			 double untraced_us, unsigned int max)
{
	double n = (double)sp->n, in_db, db_cq, cq_out, ioctl_us, user_us;
	unsigned long k = sp->n < max ? sp->n : max;

	in_db = sp->sum[0] * 1e6 / n;
	db_cq = sp->sum[1] * 1e6 / n;
	cq_out = sp->sum[2] * 1e6 / n;
	ioctl_us = sp->sum[3] * 1e6 / n;
	user_us = total_us - ioctl_us;
	qsort(sp->devfw, k, sizeof(double), cmp_double);
	printf("phsm-bench: split cmds=%lu dropped=%lu traced_us_per_cmd=%.2f "
	       "untraced_us_per_cmd=%.2f\n", sp->n, sp->dropped, total_us,
	       untraced_us);
	printf("phsm-bench: split drv_submit_us=%.2f dev_fw_us=%.2f "
	       "dev_fw_p50_us=%.2f drv_complete_us=%.2f syscall_user_us=%.2f\n",
	       in_db, db_cq, k ? sp->devfw[k / 2] * 1e6 : 0.0, cq_out,
	       user_us);
	printf("phsm-bench: split_pct driver=%.1f device_fw=%.1f "
	       "syscall_user=%.1f\n", 100 * (in_db + cq_out) / total_us,
	       100 * db_cq / total_us, 100 * user_us / total_us);
	fflush(stdout);
}

/* N depth-1 NOPs with the kprobes on; the untraced time for comparison. */
static int bench_split(int fd, const struct opts *o, double untraced_us)
{
	struct split sp = { 0 };
	uint8_t resp[RESP_CAP];
	unsigned int i;
	struct req r;
	double t0, t1;
	int ret;

	if (make_nop(&r, 0x30000))
		return -ENOMEM;
	ret = tr_setup();
	if (ret) {
		printf("phsm-bench: split unavailable (tracefs/kprobes: %s)\n",
		       strerror(-ret));
		tr_teardown();
		free(r.msg);
		return 0;
	}
	t0 = now_s();
	for (i = 0; i < o->trace && !ret; i++)
		ret = nop_sync(fd, &r, resp);
	t1 = now_s();
	tr_write("tracing_on", "0", false);
	if (!ret)
		ret = tr_collect(&sp, o->trace);
	tr_teardown();
	free(r.msg);
	if (ret) {
		fprintf(stderr, "split: %s\n", strerror(-ret));
	} else if (!sp.n) {
		printf("phsm-bench: split no complete command in the trace\n");
	} else {
		report_split(&sp, (t1 - t0) * 1e6 / o->trace, untraced_us,
			     o->trace);
	}
	free(sp.devfw);
	return ret;
}

/* The depth-1 time per command without probes, over a short run. */
static double untraced_us(int fd, unsigned int n)
{
	uint8_t resp[RESP_CAP];
	struct req r;
	unsigned int i;
	double t0;

	if (make_nop(&r, 0x40000))
		return 0;
	t0 = now_s();
	for (i = 0; i < n; i++)
		if (nop_sync(fd, &r, resp))
			break;
	t0 = (now_s() - t0) * 1e6 / (i ? i : 1);
	free(r.msg);
	return t0;
}

static void usage(void)
{
	fprintf(stderr, "usage: vm_nop_bench [--dev PATH] [--seconds S] "
		"[--depth 2..%d] [--trace N]\n", MAX_DEPTH);
	exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		if (!strcmp(argv[i], "--dev"))
			o->dev = v;
		else if (!strcmp(argv[i], "--seconds"))
			o->seconds = strtod(v, NULL);
		else if (!strcmp(argv[i], "--depth"))
			o->depth = (unsigned int)strtoul(v, NULL, 10);
		else if (!strcmp(argv[i], "--trace"))
			o->trace = (unsigned int)strtoul(v, NULL, 10);
		else
			usage();
		i++;
	}
	if (!(o->seconds > 0 && o->seconds < 3600) || o->depth < 2 ||
	    o->depth > MAX_DEPTH || o->trace > 1000000)
		usage();
}

int main(int argc, char **argv)
{
	struct opts o = { "/dev/phsm0", 5.0, 32, 2000 };
	struct phsm_ioctl_info info;
	uint8_t resp[RESP_CAP];
	struct req warm;
	int fd, ret, i;
	double us1;

	parse(argc, argv, &o);
	fd = open(o.dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		perror(o.dev);
		return 1;
	}
	if (ioctl(fd, PHSM_IOCTL_INFO, &info)) {
		perror("PHSM_IOCTL_INFO");
		return 1;
	}
	printf("phsm-bench: dev=%s queue_depth=%u max_async=%u seconds=%.1f "
	       "depth=%u\n", o.dev, info.queue_depth, info.max_async,
	       o.seconds, o.depth);
	if (o.depth > info.max_async || o.depth > info.queue_depth)
		printf("phsm-bench: note: depth %u is above the driver's "
		       "limits; the excess waits\n", o.depth);
	/* Warm up: the context is opened at the first command. */
	if (make_nop(&warm, 0x50000))
		return 1;
	for (i = 0; i < 200; i++)
		if ((ret = nop_sync(fd, &warm, resp))) {
			fprintf(stderr, "warm-up NOP: %s\n", strerror(-ret));
			return 1;
		}
	free(warm.msg);

	ret = bench_depth1(fd, &o);
	if (!ret)
		ret = bench_depth(fd, &o);
	if (!ret && o.trace) {
		us1 = untraced_us(fd, o.trace);
		ret = bench_split(fd, &o, us1);
	}
	close(fd);
	return ret ? 1 : 0;
}
