// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: everything the card firmware does with bytes from the
 * host, behind fw_card_handle().
 *
 * One input is a stream of requests, split the way phsm-fw frames its
 * socket: while the next header announces a plausible length, that many
 * bytes are one request; whatever is left over goes in as one last
 * request.  Streams let the fuzzer reach states that need several
 * commands (a token initialised, a session open, a user logged in).
 *
 * Each input runs on a card of its own, opened on an empty state
 * directory and removed afterwards: an input does the same thing every
 * time it runs (a crash found is a crash reproduced), and the handles a
 * fresh card hands out are the ones the seed corpus (fuzz_seeds.c) uses.
 * The state directories are made under $TMPDIR.  Every card is a copy of
 * one made at start with a cloning identity, so that the cloning
 * commands get past "no identity" into their real work (making an
 * identity per input would cost ten times the rest).
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "firmware-sim/core/card.h"
#include "uapi/codec/phsm_codec.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base_dir[4096];
static char template_dir[4096 + 16];
/* The files of a closed card's state directory. */
static const char *const state_files[] = { "master.key", "phsm.db" };

/* Checks that hold for every answer, whatever the request was. */
static void check_response(const uint8_t *resp, size_t len)
{
	struct phsm_msg m;
	uint32_t st = phsm_msg_parse(resp, len, true, &m);

	if (st != PHSM_ST_OK) {
		fprintf(stderr, "fuzz: card produced an unparsable response (%s)\n",
			phsm_status_name(st));
		abort();
	}
}

static void handle_one(struct fw_card *card, uint64_t app,
		       const uint8_t *req, size_t len)
{
	uint8_t *resp = NULL;
	size_t resp_len = 0;

	if (fw_card_handle(card, app, req, len, &resp, &resp_len) == 0)
		check_response(resp, resp_len);
	free(resp);
}

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void copy_file(const char *from_dir, const char *to_dir,
		      const char *name)
{
	char from[8192], to[8192], buf[65536];
	FILE *in, *out;
	size_t n;

	snprintf(from, sizeof(from), "%s/%s", from_dir, name);
	snprintf(to, sizeof(to), "%s/%s", to_dir, name);
	in = fopen(from, "rb");
	out = fopen(to, "wb");
	if (!in || !out) {
		perror("fuzz: copying the template card");
		abort();
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			abort();
	if (ferror(in) || fclose(out))
		abort();
	fclose(in);
}

static struct fw_card *open_card(char *dir, size_t dir_len)
{
	struct fw_card_config cfg = {
		.partitions = 2,
		.pin_iterations = 1,	/* PBKDF2 speed is not what we test */
	};
	struct fw_card *card;
	char err[256] = "";

	snprintf(dir, dir_len, "%s/card.XXXXXX", base_dir);
	if (!mkdtemp(dir)) {
		perror("fuzz: mkdtemp");
		abort();
	}
	for (size_t i = 0; i < sizeof(state_files) / sizeof(state_files[0]); i++)
		copy_file(template_dir, dir, state_files[i]);
	cfg.state_dir = dir;
	if (fw_card_open(&cfg, &card, err, sizeof(err))) {
		fprintf(stderr, "fuzz: cannot open a card on %s: %s\n", dir, err);
		abort();
	}
	return card;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	struct fw_card_config cfg = { .partitions = 2, .pin_iterations = 1 };
	char mfg_dir[4096 + 8], err[256] = "";
	struct fw_card *card;

	(void)argc;
	(void)argv;
	snprintf(base_dir, sizeof(base_dir), "%s/phsm-fuzz.XXXXXX",
		 tmp ? tmp : "/tmp");
	if (!mkdtemp(base_dir)) {
		perror("fuzz: mkdtemp");
		exit(1);
	}
	/* The template: a card with an identity, closed again. */
	snprintf(mfg_dir, sizeof(mfg_dir), "%s/mfg", base_dir);
	snprintf(template_dir, sizeof(template_dir), "%s/template", base_dir);
	cfg.state_dir = template_dir;
	cfg.mfg_dir = mfg_dir;
	if (fw_mfg_init(mfg_dir, err, sizeof(err)) ||
	    fw_card_open(&cfg, &card, err, sizeof(err))) {
		fprintf(stderr, "fuzz: cannot make the template card: %s\n", err);
		exit(1);
	}
	fw_card_close(card);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char dir[4096 + 32];
	struct fw_card *card = open_card(dir, sizeof(dir));
	uint64_t app = fw_card_app_open(card);

	while (size) {
		uint32_t n = phsm_msg_peek_length(data, size);

		if (n == 0 || n > size)
			n = (uint32_t)size;
		handle_one(card, app, data, n);
		data += n;
		size -= n;
	}
	fw_card_app_close(card, app);
	fw_card_close(card);
	nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}
