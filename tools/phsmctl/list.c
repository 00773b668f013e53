// SPDX-License-Identifier: MIT
/*
 * phsmctl list: every phsm card on the PCI bus, found through libpci
 * (address, IDs, link, BARs, bound driver), joined with what the phsm
 * driver says of it under /sys/class/phsm/phsmN (whose "device" link
 * names the PCI function).  A card without the driver is listed too:
 * seeing it unbound is what an administrator needs to know.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pci/pci.h>

#include "../../uapi/phsm_dev.h"
#include "phsmctl.h"

#define MAX_CARDS	64

/* The driver's attributes, in the order they are shown. */
static const char *const attr_names[] = {
	"serial", "firmware_version", "queue_depth", "commands", "errors",
	"timeouts", "state",
};
#define NATTRS (sizeof(attr_names) / sizeof(attr_names[0]))
/* Those that are counts, shown as JSON numbers. */
#define ATTR_NUMERIC(i)	((i) >= 2 && (i) <= 5)

struct bar {
	int index;
	bool io, prefetchable, is64;
	unsigned long long addr, size;
};

struct card {
	char addr[32];			/* dddd:bb:dd.f */
	unsigned int vendor, device;
	char link_speed[32];		/* "" when unknown */
	unsigned int link_width;	/* 0 when unknown */
	struct bar bars[6];
	int nbars;
	char driver[64];		/* "" when none is bound */
	char node[32];			/* "phsmN", "" without the driver */
	char attrs[NATTRS][64];		/* "" when missing */
};

static const char *const speed_names[] = {
	"", "2.5GT/s", "5GT/s", "8GT/s", "16GT/s", "32GT/s", "64GT/s",
};

/* First line of a small file, without the newline; false if unreadable. */
static bool read_line(const char *path, char *buf, size_t n)
{
	FILE *f = fopen(path, "re");
	bool ok;

	if (!f)
		return false;
	ok = fgets(buf, (int)n, f) != NULL;
	fclose(f);
	if (!ok)
		return false;
	buf[strcspn(buf, "\n")] = '\0';
	return true;
}

static void pci_die(char *msg, ...)
	__attribute__((format(printf, 1, 2), noreturn));
static void pci_quiet(char *msg, ...) __attribute__((format(printf, 1, 2)));

/* libpci's errors end the program, as its own tools do. */
static void pci_die(char *msg, ...)
{
	va_list ap;

	fputs("phsmctl: libpci: ", stderr);
	va_start(ap, msg);
	vfprintf(stderr, msg, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_FAIL);
}

static void pci_quiet(char *msg, ...)
{
	(void)msg;
}

/* Link speed and width from the PCIe capability, else from sysfs. */
static void read_link(struct pci_dev *d, const struct options *o,
		      struct card *c)
{
	struct pci_cap *cap = pci_find_cap(d, PCI_CAP_ID_EXP, PCI_CAP_NORMAL);
	char path[PATH_MAX], buf[64];

	if (cap) {
		unsigned int sta = pci_read_word(d, cap->addr + PCI_EXP_LNKSTA);
		unsigned int speed = sta & PCI_EXP_LNKSTA_SPEED;

		if (speed && speed < sizeof(speed_names) / sizeof(speed_names[0]))
			snprintf(c->link_speed, sizeof(c->link_speed), "%s",
				 speed_names[speed]);
		c->link_width = (sta & PCI_EXP_LNKSTA_WIDTH) >> 4;
		return;
	}
	/* Without root, config space beyond 64 bytes is not readable. */
	if (fmt(path, sizeof(path), "%s/bus/pci/devices/%s/current_link_speed",
		o->sysfs, c->addr) && read_line(path, buf, sizeof(buf))) {
		buf[strcspn(buf, " ")] = '\0';	/* "2.5 GT/s PCIe" */
		if (strcmp(buf, "Unknown") != 0)
			fmt(c->link_speed, sizeof(c->link_speed), "%sGT/s", buf);
	}
	if (fmt(path, sizeof(path), "%s/bus/pci/devices/%s/current_link_width",
		o->sysfs, c->addr) && read_line(path, buf, sizeof(buf)))
		c->link_width = (unsigned int)strtoul(buf, NULL, 10);
}

static void read_bars(struct pci_dev *d, struct card *c)
{
	for (int i = 0; i < 6; i++) {
		pciaddr_t base = d->base_addr[i];
		struct bar *b;

		if (!d->size[i])
			continue;
		b = &c->bars[c->nbars++];
		b->index = i;
		b->size = d->size[i];
		b->io = base & PCI_BASE_ADDRESS_SPACE_IO;
		if (b->io) {
			b->addr = base & PCI_BASE_ADDRESS_IO_MASK;
		} else {
			b->addr = base & PCI_BASE_ADDRESS_MEM_MASK;
			b->prefetchable = base & PCI_BASE_ADDRESS_MEM_PREFETCH;
			b->is64 = (base & PCI_BASE_ADDRESS_MEM_TYPE_MASK) ==
				  PCI_BASE_ADDRESS_MEM_TYPE_64;
		}
	}
}

static void fill_card(struct pci_dev *d, const struct options *o,
		      struct card *c)
{
	char *drv;

	memset(c, 0, sizeof(*c));
	snprintf(c->addr, sizeof(c->addr), "%04x:%02x:%02x.%d",
		 (unsigned int)d->domain, d->bus, d->dev, d->func);
	c->vendor = d->vendor_id;
	c->device = d->device_id;
	read_link(d, o, c);
	read_bars(d, c);
	drv = pci_get_string_property(d, PCI_FILL_DRIVER);
	if (drv)
		snprintf(c->driver, sizeof(c->driver), "%s", drv);
}

/* The PCI address /sys/class/phsm/NODE/device points at, or "". */
static void node_address(const char *classdir, const char *node, char *out,
			 size_t n)
{
	char path[PATH_MAX], target[PATH_MAX];
	ssize_t len;
	char *base;

	out[0] = '\0';
	if (!fmt(path, sizeof(path), "%s/%s/device", classdir, node))
		return;
	len = readlink(path, target, sizeof(target) - 1);
	if (len <= 0)
		return;
	target[len] = '\0';
	base = strrchr(target, '/');
	if (!fmt(out, n, "%s", base ? base + 1 : target))
		out[0] = '\0';
}

/* Give each card its node and the driver's attributes. */
static void join_sysfs(const struct options *o, struct card *cards, int n)
{
	char classdir[PATH_MAX], path[PATH_MAX], addr[64];
	struct dirent *de;
	DIR *dir;

	if (!fmt(classdir, sizeof(classdir), "%s/class/phsm", o->sysfs))
		return;
	dir = opendir(classdir);
	if (!dir)
		return;		/* the driver is not loaded */
	while ((de = readdir(dir)) != NULL) {
		if (strncmp(de->d_name, "phsm", 4) != 0)
			continue;
		node_address(classdir, de->d_name, addr, sizeof(addr));
		for (int i = 0; i < n; i++) {
			if (strcmp(cards[i].addr, addr) != 0)
				continue;
			if (!fmt(cards[i].node, sizeof(cards[i].node), "%s",
				 de->d_name))
				continue;
			for (size_t a = 0; a < NATTRS; a++) {
				if (!fmt(path, sizeof(path), "%s/%s/%s", classdir,
					 de->d_name, attr_names[a]) ||
				    !read_line(path, cards[i].attrs[a],
					       sizeof(cards[i].attrs[a])))
					cards[i].attrs[a][0] = '\0';
			}
		}
	}
	closedir(dir);
}

static int card_cmp(const void *a, const void *b)
{
	return strcmp(((const struct card *)a)->addr,
		      ((const struct card *)b)->addr);
}

/* The phsm cards on the bus; -1 if the bus cannot be read. */
static int scan(const struct options *o, struct card *cards)
{
	char devices[PATH_MAX], busdir[PATH_MAX];
	struct pci_access *pacc;
	struct pci_dev *d;
	struct stat st;
	int n = 0;

	if (!fmt(busdir, sizeof(busdir), "%s/bus/pci", o->sysfs) ||
	    !fmt(devices, sizeof(devices), "%s/devices", busdir)) {
		err_msg("%s: path too long", o->sysfs);
		return -1;
	}
	if (stat(devices, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0;	/* no PCI bus here (a container): no cards */
	pacc = pci_alloc();
	if (!pacc) {
		err_msg("libpci: out of memory");
		return -1;
	}
	pacc->error = pci_die;
	pacc->warning = pci_quiet;
	pacc->debug = pci_quiet;
	/* sysfs only: never probe I/O ports, whatever the privileges. */
	pacc->method = PCI_ACCESS_SYS_BUS_PCI;
	pci_set_param(pacc, "sysfs.path", busdir);
	pci_init(pacc);
	pci_scan_bus(pacc);
	for (d = pacc->devices; d; d = d->next) {
		pci_fill_info(d, PCI_FILL_IDENT | PCI_FILL_BASES |
			      PCI_FILL_SIZES | PCI_FILL_CAPS | PCI_FILL_DRIVER);
		if (d->vendor_id != PHSM_PCI_VENDOR_ID ||
		    d->device_id != PHSM_PCI_DEVICE_ID)
			continue;
		if (n == MAX_CARDS) {
			err_msg("more than %d cards; showing the first", MAX_CARDS);
			break;
		}
		fill_card(d, o, &cards[n++]);
	}
	pci_cleanup(pacc);
	qsort(cards, (size_t)n, sizeof(*cards), card_cmp);
	join_sysfs(o, cards, n);
	return n;
}

static const char *or_dash(const char *s)
{
	return *s ? s : "-";
}

static void print_size(unsigned long long size, char *buf, size_t n)
{
	if (size >= (1ull << 30) && !(size & ((1ull << 30) - 1)))
		snprintf(buf, n, "%lluG", size >> 30);
	else if (size >= (1ull << 20) && !(size & ((1ull << 20) - 1)))
		snprintf(buf, n, "%lluM", size >> 20);
	else if (size >= 1024 && !(size & 1023))
		snprintf(buf, n, "%lluK", size >> 10);
	else
		snprintf(buf, n, "%llu", size);
}

static void print_plain(const struct card *c)
{
	char size[32];

	printf("%s  %s  %04x:%04x  ", or_dash(c->node), c->addr, c->vendor,
	       c->device);
	if (c->link_speed[0])
		printf("link %s x%u", c->link_speed, c->link_width);
	else
		printf("link -");
	printf("  driver %s\n", c->driver[0] ? c->driver : "(none)");
	for (int i = 0; i < c->nbars; i++) {
		const struct bar *b = &c->bars[i];

		print_size(b->size, size, sizeof(size));
		printf("  BAR%d  %s 0x%llx [size=%s]%s%s\n", b->index,
		       b->io ? "io" : "mem", b->addr, size,
		       b->is64 ? " 64-bit" : "",
		       b->prefetchable ? " prefetchable" : "");
	}
	if (!c->node[0]) {
		printf("  (not bound to the phsm driver: no device node)\n");
		return;
	}
	for (size_t a = 0; a < NATTRS; a++)
		printf("  %-17s %s\n", attr_names[a], or_dash(c->attrs[a]));
}

static void json_attr(struct json *j, size_t a, const char *v)
{
	char *end;
	unsigned long long n;

	if (!*v) {
		json_null(j, attr_names[a]);
		return;
	}
	if (ATTR_NUMERIC(a)) {
		errno = 0;
		n = strtoull(v, &end, 10);
		if (!errno && end != v && !*end) {
			json_uint(j, attr_names[a], n);
			return;
		}
	}
	json_str(j, attr_names[a], v);
}

static void print_json(const struct card *cards, int n)
{
	struct json j;
	char id[8];

	json_init(&j, stdout);
	json_begin(&j, NULL, '{');
	json_begin(&j, "cards", '[');
	for (int i = 0; i < n; i++) {
		const struct card *c = &cards[i];

		json_begin(&j, NULL, '{');
		json_str(&j, "pci_address", c->addr);
		snprintf(id, sizeof(id), "%04x", c->vendor);
		json_str(&j, "vendor", id);
		snprintf(id, sizeof(id), "%04x", c->device);
		json_str(&j, "device", id);
		if (c->link_speed[0])
			json_str(&j, "link_speed", c->link_speed);
		else
			json_null(&j, "link_speed");
		if (c->link_width)
			json_uint(&j, "link_width", c->link_width);
		else
			json_null(&j, "link_width");
		json_begin(&j, "bars", '[');
		for (int b = 0; b < c->nbars; b++) {
			json_begin(&j, NULL, '{');
			json_uint(&j, "index", (unsigned int)c->bars[b].index);
			json_str(&j, "type", c->bars[b].io ? "io" : "mem");
			json_uint(&j, "address", c->bars[b].addr);
			json_uint(&j, "size", c->bars[b].size);
			json_bool(&j, "64bit", c->bars[b].is64);
			json_bool(&j, "prefetchable", c->bars[b].prefetchable);
			json_end(&j, '}');
		}
		json_end(&j, ']');
		if (c->driver[0])
			json_str(&j, "driver", c->driver);
		else
			json_null(&j, "driver");
		if (c->node[0]) {
			char dev[64];

			snprintf(dev, sizeof(dev), "/dev/%s", c->node);
			json_str(&j, "device_node", dev);
		} else {
			json_null(&j, "device_node");
		}
		for (size_t a = 0; a < NATTRS; a++)
			json_attr(&j, a, c->node[0] ? c->attrs[a] : "");
		json_end(&j, '}');
	}
	json_end(&j, ']');
	json_end(&j, '}');
	json_finish(&j);
}

int cmd_list(const struct options *o)
{
	static struct card cards[MAX_CARDS];
	int n = scan(o, cards);

	if (n < 0)
		return EXIT_FAIL;
	if (o->json) {
		print_json(cards, n);
		return EXIT_OK;
	}
	if (!n) {
		printf("no phsm cards found\n");
		return EXIT_OK;
	}
	for (int i = 0; i < n; i++)
		print_plain(&cards[i]);
	return EXIT_OK;
}
