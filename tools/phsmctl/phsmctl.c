// SPDX-License-Identifier: MIT
/*
 * phsmctl: list the phsm cards of a host, show a card's partitions and
 * its cloning identity.
 * Documentation/phsm/phsmctl.rst describes the commands and the output.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "phsmctl.h"

static void usage(FILE *f)
{
	fputs("usage: phsmctl [--json] list\n"
	      "       phsmctl [--json] show N\n"
	      "       phsmctl [--json] show --socket PATH\n"
	      "       phsmctl [--json] identity N | identity --socket PATH\n"
	      "\n"
	      "  list             the phsm cards on the PCI bus, with the driver's\n"
	      "                   view of each (serial, firmware, state, counters)\n"
	      "  show N           card N (/dev/phsmN) and its partitions, as the\n"
	      "                   card reports them\n"
	      "  identity N       card N's cloning identity: its device certificate\n"
	      "                   and the manufacturer root it trusts (PEM)\n"
	      "\n"
	      "  --json           machine-readable output\n"
	      "  --socket PATH    show, identity: ask a phsm-fw daemon at PATH instead\n"
	      "  --sysfs DIR      list: read sysfs from DIR instead of /sys\n"
	      "  --help           this text\n"
	      "\n"
	      "Exit status: 0 success (also when there are no cards), 1 the card\n"
	      "is unknown, unreachable or failed, 2 usage error.\n"
	      "Environment: PHSM_DEV_DIR, where the phsmN nodes are (/dev).\n", f);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' },
		{ "sysfs", required_argument, NULL, 'y' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dev_dir = getenv("PHSM_DEV_DIR");
	struct options o = {
		.sysfs = "/sys",
		.dev_dir = dev_dir && *dev_dir ? dev_dir : "/dev",
	};
	const char *cmd;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			o.json = true;
			break;
		case 's':
			o.socket = optarg;
			break;
		case 'y':
			o.sysfs = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[optind++];
	if (strcmp(cmd, "list") == 0 && optind == argc && !o.socket)
		return cmd_list(&o);
	if (strcmp(cmd, "show") == 0 || strcmp(cmd, "identity") == 0) {
		int (*fn)(const struct options *, const char *) =
			cmd[0] == 's' ? cmd_show : cmd_identity;

		if (o.socket && optind == argc)
			return fn(&o, NULL);
		if (!o.socket && optind + 1 == argc)
			return fn(&o, argv[optind]);
	}
	err_msg("bad command line; see phsmctl --help");
	return EXIT_USAGE;
}
