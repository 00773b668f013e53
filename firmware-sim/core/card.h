/* SPDX-License-Identifier: MIT */
/*
 * The card firmware as a library: open a card on its state directory, then
 * hand it requests.  fw_card_handle() is safe to call from several threads
 * at once; requests of independent sessions run in parallel.  The core has
 * no sockets and starts no threads: front-ends (the phsm-fw daemon, the
 * QEMU bridge, unit tests, fuzzers) own I/O and threading.
 */
#ifndef PHSM_FW_CARD_H
#define PHSM_FW_CARD_H

#include <stddef.h>
#include <stdint.h>

struct fw_card;

struct fw_card_config {
	const char *state_dir;		/* created if missing */
	unsigned int partitions;	/* tokens on this card, 1..16 */
	unsigned int pin_iterations;	/* PBKDF2 rounds; 0: the default */
	/* Cluster ID given to partitions when they are first created
	 * (1..24 of [A-Za-z0-9_.-]); NULL: the card's serial number. */
	const char *cluster_id;

	/* Key cloning (Documentation/phsm/cloning.rst). */
	const char *mfg_dir;		/* provision an identity from this
					 * manufacturer directory if the card
					 * has none; NULL: keep what it has */
	unsigned int device_curve;	/* device key: 256 or 384; 0: 256 */
	unsigned int clone_negotiation_timeout;	/* seconds; 0: 600 */
	unsigned int clone_session_lifetime;	/* seconds; 0: 3600 */
	long clock_offset;		/* seconds added to the card clock */
	/* Test knobs, bit (1 << value) per offered value; 0: all known. */
	unsigned int clone_suites;
	unsigned int clone_kdfs;
	unsigned int clone_encodings;
};

/*
 * Create the simulated manufacturer CA in @dir if it does not exist yet
 * (idempotent, safe against parallel callers).  Returns 0, or -1 with a
 * message in err.
 */
int fw_mfg_init(const char *dir, char *err, size_t err_len);

/* Returns 0, or -1 with a message in err. */
int fw_card_open(const struct fw_card_config *cfg, struct fw_card **out,
		 char *err, size_t err_len);
void fw_card_close(struct fw_card *card);

/*
 * Application contexts: one per client connection (or driver file).
 * Closing one drops its sessions, logins and operations.
 */
uint64_t fw_card_app_open(struct fw_card *card);
void fw_card_app_close(struct fw_card *card, uint64_t app);

/*
 * Process one request of @len bytes for application @app.  Always produces
 * a response (a malformed request gets one with a PHSM_ST_* status) in a
 * malloc'ed buffer; returns 0, or -1 only when memory for the response
 * itself could not be had.
 */
int fw_card_handle(struct fw_card *card, uint64_t app, const uint8_t *req,
		   size_t len, uint8_t **resp, size_t *resp_len);

#endif /* PHSM_FW_CARD_H */
