// SPDX-License-Identifier: MIT
/*
 * Key cloning (Documentation/phsm/cloning.rst): the CPv4 calls
 * (CA_Migration*, CA_Extract, CA_Insert), the CPv3 calls (CA_CloneAs*),
 * and the two top-level calls CA_MigrateKeys and CA_CloneObject, which
 * this library composes from the others.
 *
 * The card makes and checks every step message and blob; here they are
 * opaque bytes.  What the library owns is the argument checks, the
 * splitting of large CA_Extract/CA_Insert calls into requests the card
 * takes (PHSM_CLONE_BATCH_MAX objects, PHSM_CLONE_BATCH_BYTES of blobs),
 * and checking every answer before any of it reaches the caller.  The two
 * sessions of a top-level call may be on different cards: each call goes
 * to the card of its own session.
 */
#include <stdlib.h>
#include <string.h>

#include <phsm/cryptoki_ca.h>

#include "lib.h"

#define SID_MAX		64	/* clone session IDs are 1..64 bytes */
#define FIRST_BUF	8192	/* step messages fit in it ([V3] 88) */
#define FETCH_TRIES	3	/* calls to get an output whose size grew */
#define NEGO_ROUNDS	8	/* Continue calls before DONE, at most */

_Static_assert(sizeof(CK_ULONG) == sizeof(uint64_t),
	       "CK_ULONG arrays are sent as they are");

static bool bbool_ok(CK_BBOOL b)
{
	return b == CK_TRUE || b == CK_FALSE;
}

/* A caller's input buffer: NULL only when empty, and sendable. */
static bool in_ok(const void *p, CK_ULONG len)
{
	return (p || !len) && len <= LIB_DATA_MAX;
}

static bool sid_ok(const void *p, CK_ULONG len)
{
	return p && len && len <= SID_MAX;
}

/* ---- answers: "BYTES out, U64 outlen" ---------------------------------- */

struct out_view {
	const uint8_t *p;
	size_t n;
	uint64_t len;
};

/*
 * Read an output from the answer and check it against the caller's
 * capacity (PHSM_OUT_QUERY for a NULL buffer).  On CKR_BUFFER_TOO_SMALL
 * the caller checks which of its outputs was too small.
 */
static bool get_out(struct phsm_reader *r, CK_RV rv, uint64_t cap,
		    struct out_view *o)
{
	o->p = phsm_get_bytes(r, &o->n);
	o->len = phsm_get_u64(r);
	if (!o->p || r->status != PHSM_ST_OK)
		return false;
	if (rv == CKR_BUFFER_TOO_SMALL)
		return cap != PHSM_OUT_QUERY && o->n == 0;
	if (cap == PHSM_OUT_QUERY)
		return o->n == 0;
	return o->n == o->len && o->len <= cap;
}

static void put_out(const struct out_view *o, CK_BYTE_PTR buf,
		    CK_ULONG_PTR len)
{
	if (buf && o->n)
		memcpy(buf, o->p, o->n);
	*len = o->len;
}

/*
 * A call whose answer is one output: check it (the whole answer), then
 * hand it to the caller.
 */
static CK_RV finish_output(struct lib_call *c, CK_RV rv, CK_BYTE_PTR buf,
			   CK_ULONG_PTR len)
{
	uint64_t cap = out_capacity(buf, len);
	struct out_view o;

	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)
		return call_end(c, rv);
	if (!get_out(&c->r, rv, cap, &o) || !call_done(c) ||
	    (rv == CKR_BUFFER_TOO_SMALL && o.len <= cap))
		return call_end(c, CKR_DEVICE_ERROR);
	put_out(&o, buf, len);
	return call_end(c, rv);
}

/* ---- CPv4 negotiation ------------------------------------------------- */

PHSM_EXPORT CK_RV
CA_MigrationStartSessionNegotiation(CK_SESSION_HANDLE hSession,
				    CK_ULONG inputLength, CK_BYTE_PTR input,
				    CK_ULONG_PTR step,
				    CK_ULONG_PTR outputLength,
				    CK_BYTE_PTR output)
{
	struct lib_call c;
	struct out_view o;
	uint64_t cap, st;
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	/* The input is reserved; the card judges its value ([R2] 84-90). */
	if (!step || !outputLength || !in_ok(input, inputLength))
		return CKR_ARGUMENTS_BAD;
	cap = out_capacity(output, outputLength);
	rv = call_session(&c, hSession, PHSM_OP_MIGRATION_START);
	phsm_put_bytes(&c.w, input, inputLength);
	phsm_put_u64(&c.w, cap);
	if (rv == CKR_OK)
		rv = call_run(&c);
	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)
		return call_end(&c, rv);
	st = phsm_get_u64(&c.r);
	if (!get_out(&c.r, rv, cap, &o) || !call_done(&c) || st != 1 ||
	    o.len == 0 || (rv == CKR_BUFFER_TOO_SMALL && o.len <= cap))
		return call_end(&c, CKR_DEVICE_ERROR);
	*step = st;
	put_out(&o, output, outputLength);
	return call_end(&c, rv);
}

struct cont_answer {
	uint64_t step, status;
	struct out_view out, sid;
};

/* The answer of a Continue whose input was step @in_step. */
static bool read_cont(struct lib_call *c, CK_RV rv, uint64_t in_step,
		      uint64_t cap, uint64_t sidcap, struct cont_answer *a)
{
	uint64_t next = in_step == 4 ? 0 : in_step + 1;
	bool done;

	a->step = phsm_get_u64(&c->r);
	if (!get_out(&c->r, rv, cap, &a->out))
		return false;
	a->status = phsm_get_u64(&c->r);
	if (!get_out(&c->r, rv, sidcap, &a->sid) || !call_done(c))
		return false;
	done = a->status == CK_SESSION_NEGOTIATION_STATUS_DONE;
	if (a->step != next || (!done &&
	    a->status != CK_SESSION_NEGOTIATION_STATUS_MORE) ||
	    done != (next == 4 || next == 0) ||
	    (next == 0) != (a->out.len == 0) ||
	    a->sid.len < 1 || a->sid.len > SID_MAX)
		return false;
	/* Too small: one of the two buffers at least. */
	return rv != CKR_BUFFER_TOO_SMALL ||
	       a->out.len > cap || a->sid.len > sidcap;
}

PHSM_EXPORT CK_RV
CA_MigrationContinueSessionNegotiation(CK_SESSION_HANDLE hSession,
				       CK_ULONG inputStep, CK_ULONG inputLength,
				       CK_BYTE_PTR input,
				       CK_ULONG sessionUidInputLen,
				       CK_BYTE_PTR sessionUidInput,
				       CK_ULONG_PTR outputStep,
				       CK_ULONG_PTR outputLength,
				       CK_BYTE_PTR output, CK_ULONG_PTR status,
				       CK_ULONG_PTR sessionUidOutputLen,
				       CK_BYTE_PTR sessionUidOutput)
{
	struct lib_call c;
	struct cont_answer a;
	uint64_t cap, sidcap;
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	if (!outputStep || !outputLength || !status || !sessionUidOutputLen ||
	    !input || !inputLength || !in_ok(input, inputLength) ||
	    !in_ok(sessionUidInput, sessionUidInputLen) ||
	    sessionUidInputLen > SID_MAX)
		return CKR_ARGUMENTS_BAD;
	/* Both outputs are queried together, or neither ([R2] line 170). */
	if (!output != !sessionUidOutput)
		return CKR_ARGUMENTS_BAD;
	cap = out_capacity(output, outputLength);
	sidcap = out_capacity(sessionUidOutput, sessionUidOutputLen);
	rv = call_session(&c, hSession, PHSM_OP_MIGRATION_CONTINUE);
	phsm_put_u64(&c.w, inputStep);
	phsm_put_bytes(&c.w, input, inputLength);
	phsm_put_bytes(&c.w, sessionUidInput, sessionUidInputLen);
	phsm_put_u64(&c.w, cap);
	phsm_put_u64(&c.w, sidcap);
	if (rv == CKR_OK)
		rv = call_run(&c);
	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)
		return call_end(&c, rv);
	if (!read_cont(&c, rv, inputStep, cap, sidcap, &a))
		return call_end(&c, CKR_DEVICE_ERROR);
	put_out(&a.out, output, outputLength);
	put_out(&a.sid, sessionUidOutput, sessionUidOutputLen);
	if (rv == CKR_OK) {
		*outputStep = a.step;
		*status = a.status;
	}
	return call_end(&c, rv);
}

PHSM_EXPORT CK_RV CA_MigrationCloseSession(CK_SESSION_HANDLE hSession,
					   CK_ULONG sessionUidLen,
					   CK_BYTE_PTR sessionUid)
{
	struct lib_call c;
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	if (!sid_ok(sessionUid, sessionUidLen))
		return CKR_ARGUMENTS_BAD;
	rv = call_session(&c, hSession, PHSM_OP_MIGRATION_CLOSE);
	phsm_put_bytes(&c.w, sessionUid, sessionUidLen);
	if (rv == CKR_OK)
		rv = call_run(&c);
	return call_end(&c, rv);
}

/* ---- per-object results ------------------------------------------------ */

/*
 * The per-object results of one request: each is CKR_OK, an error, or
 * CKR_CLONE_NOT_ATTEMPTED for objects after the first error when the
 * caller did not ask to go on; nothing else makes sense.
 */
static bool results_ok(const uint8_t *res, size_t n, CK_ULONG flags,
		       bool *failed)
{
	bool stopped = false;

	*failed = false;
	for (size_t i = 0; i < n; i++) {
		CK_RV r = phsm_array_u64(res, i);

		if (stopped != (r == CKR_CLONE_NOT_ATTEMPTED))
			return false;
		if (r != CKR_OK && r != CKR_CLONE_NOT_ATTEMPTED) {
			*failed = true;
			stopped = !(flags & CKF_CONTINUE_ON_ERR);
		}
	}
	return true;
}

static void preset_results(CK_RV *result, CK_ULONG n)
{
	for (CK_ULONG i = 0; i < n; i++)
		result[i] = CKR_CLONE_NOT_ATTEMPTED;
}

/* ---- CA_Extract --------------------------------------------------------- */

/*
 * Part of a CK_ULONG array as a U64_ARRAY field: CK_ULONG is not
 * uint64_t everywhere, so the values are converted, never the pointer.
 * Requests carry at most PHSM_CLONE_BATCH_MAX objects.
 */
static void put_ulongs(struct phsm_writer *w, const CK_ULONG *v, size_t n)
{
	uint64_t u[PHSM_CLONE_BATCH_MAX];

	if (n > PHSM_CLONE_BATCH_MAX)
		n = PHSM_CLONE_BATCH_MAX;
	for (size_t i = 0; i < n; i++)
		u[i] = v[i];
	phsm_put_u64_array(w, u, n);
}

static uint64_t extract_cap(const CK_CPV4_EXTRACT_PARAMS *p, CK_ULONG i,
			    bool query)
{
	if (query)
		return PHSM_OUT_QUERY;
	return p->keyBlobLength[i] < PHSM_CLONE_BATCH_BYTES ?
	       p->keyBlobLength[i] : PHSM_CLONE_BATCH_BYTES;
}

/* How many objects from @first go into one request. */
static CK_ULONG extract_count(const CK_CPV4_EXTRACT_PARAMS *p, CK_ULONG first,
			      bool query)
{
	CK_ULONG n = 0;
	uint64_t bytes = 0;

	while (first + n < p->numberOfObjects && n < PHSM_CLONE_BATCH_MAX) {
		uint64_t cap = query ? 0 : extract_cap(p, first + n, false);

		if (n && bytes + cap > PHSM_CLONE_BATCH_BYTES)
			break;
		bytes += cap;
		n++;
	}
	return n;
}

/*
 * Check an EXTRACT answer for objects first .. first+n-1 whole, then fill
 * the caller's results, lengths and blobs.  lens[i] is the blob's size
 * (CKR_OK), the size needed (CKR_BUFFER_TOO_SMALL, and CKR_OK in a size
 * query) or 0; the blobs of the CKR_OK objects of a real request come
 * one after the other, in object order.
 */
static CK_RV extract_answer(struct lib_call *c, const CK_CPV4_EXTRACT_PARAMS *p,
			    CK_ULONG first, size_t n, bool query,
			    bool *failed)
{
	size_t nr, nl, nb, off = 0;
	const uint8_t *res = phsm_get_u64_array(&c->r, &nr);
	const uint8_t *lens = phsm_get_u64_array(&c->r, &nl);
	const uint8_t *blobs = phsm_get_bytes(&c->r, &nb);

	if (!call_done(c) || !res || !lens || !blobs || nr != n || nl != n ||
	    !results_ok(res, n, p->extractionFlags, failed))
		return CKR_DEVICE_ERROR;
	for (size_t i = 0; i < n; i++) {
		CK_RV r = phsm_array_u64(res, i);
		uint64_t len = phsm_array_u64(lens, i);
		uint64_t cap = extract_cap(p, first + i, query);

		if (r == CKR_OK && (len == 0 || (!query &&
		    (len > cap || len > nb - off))))
			return CKR_DEVICE_ERROR;
		if (r == CKR_BUFFER_TOO_SMALL && (query || len <= cap))
			return CKR_DEVICE_ERROR;
		if (r != CKR_OK && r != CKR_BUFFER_TOO_SMALL && len)
			return CKR_DEVICE_ERROR;
		if (r == CKR_OK && !query)
			off += len;
	}
	if (off != nb)
		return CKR_DEVICE_ERROR;
	off = 0;
	for (size_t i = 0; i < n; i++) {
		CK_RV r = phsm_array_u64(res, i);
		uint64_t len = phsm_array_u64(lens, i);

		p->result[first + i] = r;
		if (r != CKR_OK && r != CKR_BUFFER_TOO_SMALL)
			continue;
		p->keyBlobLength[first + i] = len;
		if (r == CKR_OK && !query) {
			memcpy(p->keyBlob[first + i], blobs + off, len);
			off += len;
		}
	}
	return CKR_OK;
}

/* One EXTRACT request; the first of a call carries the step-4 input. */
static CK_RV extract_request(CK_SESSION_HANDLE h,
			     const CK_CPV4_EXTRACT_PARAMS *p, CK_ULONG first,
			     CK_ULONG n, bool query, bool with_input,
			     bool *failed)
{
	uint64_t caps[PHSM_CLONE_BATCH_MAX];
	struct lib_call c;
	size_t mark;
	CK_RV rv = call_session(&c, h, PHSM_OP_EXTRACT);

	for (CK_ULONG i = 0; i < n; i++)
		caps[i] = extract_cap(p, first + i, query);
	mark = phsm_put_mech_begin(&c.w, CKM_CPV4_EXTRACT);
	phsm_put_bytes(&c.w, p->sessionId, p->sessionIdLength);
	if (with_input)
		phsm_put_bytes(&c.w, p->input, p->inputLength);
	else
		phsm_put_bytes(&c.w, NULL, 0);
	phsm_put_u64(&c.w, p->extractionFlags);
	put_ulongs(&c.w, p->objectType + first, n);
	put_ulongs(&c.w, p->objectHandle + first, n);
	phsm_put_u64_array(&c.w, caps, n);
	phsm_put_mech_end(&c.w, mark);
	if (rv == CKR_OK)
		rv = call_run(&c);
	if (rv == CKR_OK)
		rv = extract_answer(&c, p, first, n, query, failed);
	return call_end(&c, rv);
}

/*
 * The parameter's own checks ([R2] lines 201-258, cloning.rst
 * "Extracting"); *query says whether this is a size query.  The results
 * are set to CKR_CLONE_NOT_ATTEMPTED as soon as they can be.
 */
static CK_RV extract_params(const CK_MECHANISM *m, bool *query)
{
	const CK_CPV4_EXTRACT_PARAMS *p = m->pParameter;
	CK_ULONG nulls = 0;

	if (m->mechanism != CKM_CPV4_EXTRACT)
		return CKR_MECHANISM_INVALID;
	if (!p || m->ulParameterLen != sizeof(*p))
		return CKR_MECHANISM_PARAM_INVALID;
	if (!p->result || !p->numberOfObjects)
		return CKR_MECHANISM_PARAM_INVALID;
	preset_results(p->result, p->numberOfObjects);
	if (!sid_ok(p->sessionId, p->sessionIdLength) ||
	    !in_ok(p->input, p->inputLength) ||
	    (p->extractionFlags & ~CKF_CONTINUE_ON_ERR) ||
	    !p->objectType || !p->objectHandle || !p->keyBlobLength ||
	    !p->keyBlob)
		return CKR_MECHANISM_PARAM_INVALID;
	for (CK_ULONG i = 0; i < p->numberOfObjects; i++)
		nulls += !p->keyBlob[i];
	/* All NULL: a size query; otherwise none may be ([R2] line 258). */
	if (nulls && nulls != p->numberOfObjects)
		return CKR_MECHANISM_PARAM_INVALID;
	*query = nulls != 0;
	return CKR_OK;
}

/*
 * Send the objects in requests the card takes, in order; without
 * CKF_CONTINUE_ON_ERR stop after a request that reported a failure.
 */
static CK_RV extract_all(CK_SESSION_HANDLE h, const CK_CPV4_EXTRACT_PARAMS *p,
			 bool query)
{
	CK_ULONG first = 0;

	while (first < p->numberOfObjects) {
		CK_ULONG n = extract_count(p, first, query);
		bool failed;
		CK_RV rv = extract_request(h, p, first, n, query, first == 0,
					   &failed);

		if (rv != CKR_OK)
			return rv;
		if (failed && !(p->extractionFlags & CKF_CONTINUE_ON_ERR))
			break;
		first += n;
	}
	return CKR_OK;
}

PHSM_EXPORT CK_RV CA_Extract(CK_SESSION_HANDLE hSession,
			     CK_MECHANISM_PTR pMechanism)
{
	bool query;
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	if (!pMechanism)
		return CKR_ARGUMENTS_BAD;
	rv = extract_params(pMechanism, &query);
	if (rv != CKR_OK)
		return rv;
	return extract_all(hSession, pMechanism->pParameter, query);
}

/* ---- CA_Insert ---------------------------------------------------------- */

static CK_ULONG insert_count(const CK_CPV4_INSERT_PARAMS *p, CK_ULONG first)
{
	CK_ULONG n = 0;
	uint64_t bytes = 0;

	while (first + n < p->numberOfObjects && n < PHSM_CLONE_BATCH_MAX) {
		uint64_t len = p->keyBlobLength[first + n];

		if (bytes + len > PHSM_CLONE_BATCH_BYTES)
			break;
		bytes += len;
		n++;
	}
	return n;
}

static CK_RV insert_answer(struct lib_call *c, const CK_CPV4_INSERT_PARAMS *p,
			   CK_ULONG first, size_t n, bool *failed)
{
	size_t nr, nh;
	const uint8_t *res = phsm_get_u64_array(&c->r, &nr);
	const uint8_t *handles = phsm_get_u64_array(&c->r, &nh);

	if (!call_done(c) || !res || !handles || nr != n || nh != n ||
	    !results_ok(res, n, p->insertionFlags, failed))
		return CKR_DEVICE_ERROR;
	/* A handle exactly for the objects that were made. */
	for (size_t i = 0; i < n; i++)
		if ((phsm_array_u64(res, i) == CKR_OK) !=
		    (phsm_array_u64(handles, i) != CK_INVALID_HANDLE))
			return CKR_DEVICE_ERROR;
	for (size_t i = 0; i < n; i++) {
		p->result[first + i] = phsm_array_u64(res, i);
		if (p->result[first + i] == CKR_OK)
			p->objectHandle[first + i] = phsm_array_u64(handles, i);
	}
	return CKR_OK;
}

/* The blobs of one request, one after the other (the BYTES field). */
static uint8_t *insert_blobs(const CK_CPV4_INSERT_PARAMS *p, CK_ULONG first,
			     CK_ULONG n, size_t *len)
{
	size_t total = 0, off = 0;
	uint8_t *buf;

	for (CK_ULONG i = 0; i < n; i++)
		total += p->keyBlobLength[first + i];
	buf = malloc(total ? total : 1);
	if (!buf)
		return NULL;
	for (CK_ULONG i = 0; i < n; i++) {
		memcpy(buf + off, p->keyBlob[first + i],
		       p->keyBlobLength[first + i]);
		off += p->keyBlobLength[first + i];
	}
	*len = total;
	return buf;
}

static CK_RV insert_request(CK_SESSION_HANDLE h, const CK_CPV4_INSERT_PARAMS *p,
			    CK_ULONG first, CK_ULONG n, bool *failed)
{
	struct lib_call c;
	size_t mark, len = 0;
	uint8_t *blobs = insert_blobs(p, first, n, &len);
	CK_RV rv;

	if (!blobs)
		return CKR_HOST_MEMORY;
	rv = call_session(&c, h, PHSM_OP_INSERT);
	mark = phsm_put_mech_begin(&c.w, CKM_CPV4_INSERT);
	phsm_put_bytes(&c.w, p->sessionId, p->sessionIdLength);
	phsm_put_u64(&c.w, p->insertionFlags);
	put_ulongs(&c.w, p->storageType + first, n);
	put_ulongs(&c.w, p->objectType + first, n);
	put_ulongs(&c.w, p->keyBlobLength + first, n);
	phsm_put_bytes(&c.w, blobs, len);
	phsm_put_mech_end(&c.w, mark);
	free(blobs);
	if (rv == CKR_OK)
		rv = call_run(&c);
	if (rv == CKR_OK)
		rv = insert_answer(&c, p, first, n, failed);
	return call_end(&c, rv);
}

/* [R2] lines 274-319, cloning.rst "Inserting". */
static CK_RV insert_params(const CK_MECHANISM *m)
{
	const CK_CPV4_INSERT_PARAMS *p = m->pParameter;

	if (m->mechanism != CKM_CPV4_INSERT)
		return CKR_MECHANISM_INVALID;
	if (!p || m->ulParameterLen != sizeof(*p))
		return CKR_MECHANISM_PARAM_INVALID;
	if (!p->result || !p->numberOfObjects)
		return CKR_MECHANISM_PARAM_INVALID;
	preset_results(p->result, p->numberOfObjects);
	if (!sid_ok(p->sessionId, p->sessionIdLength) ||
	    (p->insertionFlags & ~CKF_CONTINUE_ON_ERR) ||
	    !p->storageType || !p->objectType || !p->keyBlobLength ||
	    !p->keyBlob || !p->objectHandle)
		return CKR_MECHANISM_PARAM_INVALID;
	/* No blob is empty, and none is larger than the card takes. */
	for (CK_ULONG i = 0; i < p->numberOfObjects; i++)
		if (!p->keyBlob[i] || !p->keyBlobLength[i] ||
		    p->keyBlobLength[i] > PHSM_CLONE_BATCH_BYTES)
			return CKR_MECHANISM_PARAM_INVALID;
	return CKR_OK;
}

static CK_RV insert_all(CK_SESSION_HANDLE h, const CK_CPV4_INSERT_PARAMS *p)
{
	CK_ULONG first = 0;

	while (first < p->numberOfObjects) {
		CK_ULONG n = insert_count(p, first);
		bool failed;
		CK_RV rv = insert_request(h, p, first, n, &failed);

		if (rv != CKR_OK)
			return rv;
		if (failed && !(p->insertionFlags & CKF_CONTINUE_ON_ERR))
			break;
		first += n;
	}
	return CKR_OK;
}

PHSM_EXPORT CK_RV CA_Insert(CK_SESSION_HANDLE hSession,
			    CK_MECHANISM_PTR pMechanism)
{
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	if (!pMechanism)
		return CKR_ARGUMENTS_BAD;
	rv = insert_params(pMechanism);
	if (rv != CKR_OK)
		return rv;
	return insert_all(hSession, pMechanism->pParameter);
}

/* ---- CPv3 ---------------------------------------------------------------- */

PHSM_EXPORT CK_RV CA_CloneAsSourceInit(CK_SESSION_HANDLE hSession,
				       CK_BYTE_PTR pInParameter,
				       CK_ULONG ulInParameterSize,
				       CK_BYTE_PTR pOutParameter,
				       CK_ULONG_PTR pulOutParameterSize,
				       CK_BBOOL bReplicate)
{
	struct lib_call c;
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	/* pInParameter must be NULL and 0: the card says so ([V3] 28-29). */
	if (!pulOutParameterSize || !bbool_ok(bReplicate) ||
	    !in_ok(pInParameter, ulInParameterSize))
		return CKR_ARGUMENTS_BAD;
	rv = call_session(&c, hSession, PHSM_OP_CLONE_SOURCE_INIT);
	phsm_put_bytes(&c.w, pInParameter, ulInParameterSize);
	phsm_put_u64(&c.w, bReplicate);
	phsm_put_u64(&c.w, out_capacity(pOutParameter, pulOutParameterSize));
	if (rv == CKR_OK)
		rv = call_run(&c);
	return finish_output(&c, rv, pOutParameter, pulOutParameterSize);
}

PHSM_EXPORT CK_RV CA_CloneAsTargetInit(CK_SESSION_HANDLE hSession,
				       CK_BYTE_PTR pTWC, CK_ULONG ulTWCSize,
				       CK_BYTE_PTR pKEV, CK_ULONG ulKEVSize,
				       CK_BBOOL bReplicate, CK_BYTE_PTR pPart1,
				       CK_ULONG_PTR pulPart1Size)
{
	struct lib_call c;
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	if (!pulPart1Size || !bbool_ok(bReplicate) || !pTWC || !ulTWCSize ||
	    !in_ok(pTWC, ulTWCSize) || !in_ok(pKEV, ulKEVSize))
		return CKR_ARGUMENTS_BAD;
	rv = call_session(&c, hSession, PHSM_OP_CLONE_TARGET_INIT);
	phsm_put_bytes(&c.w, pTWC, ulTWCSize);
	phsm_put_bytes(&c.w, pKEV, ulKEVSize);
	phsm_put_u64(&c.w, bReplicate);
	phsm_put_u64(&c.w, out_capacity(pPart1, pulPart1Size));
	if (rv == CKR_OK)
		rv = call_run(&c);
	return finish_output(&c, rv, pPart1, pulPart1Size);
}

PHSM_EXPORT CK_RV CA_CloneAsSource(CK_SESSION_HANDLE hSession, CK_ULONG hType,
				   CK_ULONG hHandle, CK_BYTE_PTR pPart1,
				   CK_ULONG ulPart1Size, CK_BBOOL bReplicate,
				   CK_BYTE_PTR pPart2,
				   CK_ULONG_PTR pulPart2Size)
{
	struct lib_call c;
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	if (!pulPart2Size || !bbool_ok(bReplicate) || !pPart1 ||
	    !ulPart1Size || !in_ok(pPart1, ulPart1Size))
		return CKR_ARGUMENTS_BAD;
	rv = call_session(&c, hSession, PHSM_OP_CLONE_AS_SOURCE);
	phsm_put_u64(&c.w, hType);
	phsm_put_u64(&c.w, hHandle);
	phsm_put_bytes(&c.w, pPart1, ulPart1Size);
	phsm_put_u64(&c.w, bReplicate);
	phsm_put_u64(&c.w, out_capacity(pPart2, pulPart2Size));
	if (rv == CKR_OK)
		rv = call_run(&c);
	return finish_output(&c, rv, pPart2, pulPart2Size);
}

PHSM_EXPORT CK_RV CA_CloneAsTarget(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pKEV,
				   CK_ULONG ulKEVSize, CK_BYTE_PTR pPart2,
				   CK_ULONG ulPart2Size, CK_ULONG hType,
				   CK_ULONG hHandle, CK_BBOOL bReplicate,
				   CK_OBJECT_HANDLE_PTR phClonedHandle)
{
	struct lib_call c;
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	if (!phClonedHandle || !bbool_ok(bReplicate) || !pPart2 ||
	    !ulPart2Size || !in_ok(pPart2, ulPart2Size) ||
	    !in_ok(pKEV, ulKEVSize))
		return CKR_ARGUMENTS_BAD;
	rv = call_session(&c, hSession, PHSM_OP_CLONE_AS_TARGET);
	phsm_put_bytes(&c.w, pKEV, ulKEVSize);
	phsm_put_bytes(&c.w, pPart2, ulPart2Size);
	phsm_put_u64(&c.w, hType);
	phsm_put_u64(&c.w, hHandle);
	phsm_put_u64(&c.w, bReplicate);
	if (rv == CKR_OK)
		rv = call_run(&c);
	rv = read_handle(&c, rv, phClonedHandle);
	return call_end(&c, rv);
}

/* ---- top level: buffers and helpers ----------------------------------- */

/* A growing buffer for the step messages the library relays itself. */
struct buf {
	uint8_t *p;
	CK_ULONG len, cap;
};

static CK_RV buf_reserve(struct buf *b, CK_ULONG need)
{
	uint8_t *p;

	if (need < FIRST_BUF)
		need = FIRST_BUF;
	if (need <= b->cap)
		return CKR_OK;
	if (need > LIB_DATA_MAX)
		return CKR_DEVICE_ERROR;	/* no card message is so big */
	p = realloc(b->p, need);
	if (!p)
		return CKR_HOST_MEMORY;
	b->p = p;
	b->cap = need;
	return CKR_OK;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* A low-level call that fills one output buffer (Start, the CPv3 calls). */
typedef CK_RV (*produce_fn)(void *ctx, CK_BYTE_PTR out, CK_ULONG_PTR len);

/*
 * Run @fn into @b, growing it when the card asks for more: the card keeps
 * the output of a step for a retry with the same input, so the second
 * call gets the very bytes the first one measured.
 */
static CK_RV fetch(produce_fn fn, void *ctx, struct buf *b)
{
	CK_ULONG need = FIRST_BUF;

	for (int i = 0; i < FETCH_TRIES; i++) {
		CK_ULONG len;
		CK_RV rv = buf_reserve(b, need);

		if (rv != CKR_OK)
			return rv;
		len = b->cap;
		rv = fn(ctx, b->p, &len);
		if (rv == CKR_OK)
			b->len = len;
		if (rv != CKR_BUFFER_TOO_SMALL)
			return rv;
		need = len;
	}
	return CKR_DEVICE_ERROR;	/* the size keeps changing */
}

static CK_RV session_slot(CK_SESSION_HANDLE h, CK_SLOT_ID *slot)
{
	CK_SESSION_INFO info;
	CK_RV rv = C_GetSessionInfo(h, &info);

	if (rv == CKR_OK)
		*slot = info.slotID;
	return rv;
}

/* The two sessions of a top-level call: known, and on different slots. */
static CK_RV session_pair(CK_SESSION_HANDLE src, CK_SESSION_HANDLE tgt,
			  CK_SLOT_ID slots[2])
{
	CK_RV rv = session_slot(src, &slots[0]);

	if (rv == CKR_OK)
		rv = session_slot(tgt, &slots[1]);
	if (rv == CKR_OK && slots[0] == slots[1])
		rv = CKR_ARGUMENTS_BAD;
	return rv;
}

enum proto { PROTO_NONE, PROTO_CPV3, PROTO_CPV4 };

static CK_RV proto_enabled(const CK_SLOT_ID slots[2], enum proto p, bool *on)
{
	CK_ULONG type = p == PROTO_CPV4 ? CK_PHSM_POLICY_CPV4_DISABLED :
					  CK_PHSM_POLICY_CPV3_DISABLED;

	*on = true;
	for (int i = 0; i < 2 && *on; i++) {
		CK_ULONG v;
		CK_RV rv = CA_GetContainerPolicy(slots[i],
						 CK_PHSM_CONTAINER_SELF,
						 type, &v);

		if (rv != CKR_OK)
			return rv;
		*on = v == 0;
	}
	return CKR_OK;
}

/*
 * cloning.rst "Choosing the protocol": @prefer if enabled on both
 * partitions, else the other one if enabled on both, else none.
 * @skip is a protocol not to choose again (a fallback), or PROTO_NONE.
 */
static CK_RV choose_proto(const CK_SLOT_ID slots[2], enum proto prefer,
			  enum proto skip, enum proto *out)
{
	enum proto order[2] = {
		prefer, prefer == PROTO_CPV4 ? PROTO_CPV3 : PROTO_CPV4
	};

	*out = PROTO_NONE;
	for (int i = 0; i < 2; i++) {
		bool on;
		CK_RV rv;

		if (order[i] == skip)
			continue;
		rv = proto_enabled(slots, order[i], &on);
		if (rv != CKR_OK)
			return rv;
		if (on) {
			*out = order[i];
			return CKR_OK;
		}
	}
	return CKR_OK;
}

/* ---- top level: CPv4 --------------------------------------------------- */

struct cpv4_run {
	CK_SESSION_HANDLE src, tgt;
	CK_ULONG flags;
	CK_OBJECT_MIGRATION_DATA *data;
	uint8_t sid[SID_MAX];
	CK_ULONG sid_len;
	struct buf m4;		/* for the first CA_Extract */
	bool m4_sent;
	bool attempted;		/* some object has a result */
	bool stop;		/* a failure without CKF_CONTINUE_ON_ERR */
	/* One batch of objects; idx maps back into data. */
	CK_ULONG idx[PHSM_CLONE_BATCH_MAX];
	CK_ULONG type[PHSM_CLONE_BATCH_MAX];
	CK_ULONG handle[PHSM_CLONE_BATCH_MAX];
	CK_ULONG len[PHSM_CLONE_BATCH_MAX];
	CK_RV result[PHSM_CLONE_BATCH_MAX];
	CK_BYTE_PTR blob[PHSM_CLONE_BATCH_MAX];
	CK_ULONG storage[PHSM_CLONE_BATCH_MAX];	/* all AS_IS */
	CK_OBJECT_HANDLE out[PHSM_CLONE_BATCH_MAX];
};

struct start_ctx {
	CK_SESSION_HANDLE h;
};

static CK_RV start_fn(void *ctx, CK_BYTE_PTR out, CK_ULONG_PTR len)
{
	struct start_ctx *s = ctx;
	CK_ULONG step;

	return CA_MigrationStartSessionNegotiation(s->h, 0, NULL, &step, len,
						   out);
}

/* One Continue with output buffers grown to what the card needs. */
static CK_RV nego_continue(struct cpv4_run *run, CK_SESSION_HANDLE h,
			   CK_ULONG step, const struct buf *in,
			   struct buf *out, CK_ULONG *status)
{
	uint8_t sid[SID_MAX];
	CK_ULONG need = FIRST_BUF;

	for (int i = 0; i < FETCH_TRIES; i++) {
		CK_ULONG len, sid_len = sizeof(sid), out_step;
		CK_RV rv = buf_reserve(out, need);

		if (rv != CKR_OK)
			return rv;
		len = out->cap;
		rv = CA_MigrationContinueSessionNegotiation(h, step, in->len,
				in->p, run->sid_len,
				run->sid_len ? run->sid : NULL, &out_step,
				&len, out->p, status, &sid_len, sid);
		if (rv == CKR_BUFFER_TOO_SMALL && sid_len <= sizeof(sid)) {
			need = len;
			continue;
		}
		if (rv == CKR_BUFFER_TOO_SMALL)
			return CKR_DEVICE_ERROR;
		if (rv != CKR_OK)
			return rv;
		/* Every side names the session the first Continue created. */
		if (run->sid_len && (sid_len != run->sid_len ||
				     memcmp(sid, run->sid, sid_len)))
			return CKR_DEVICE_ERROR;
		memcpy(run->sid, sid, sid_len);
		run->sid_len = sid_len;
		out->len = len;
		return CKR_OK;
	}
	return CKR_DEVICE_ERROR;
}

/*
 * Start on the source, then Continue alternately on the target and the
 * source until the target answers DONE; its output (m4) goes with the
 * first CA_Extract on the source (cloning.rst, "Message sequence").
 */
static CK_RV negotiate(struct cpv4_run *run)
{
	struct start_ctx sc = { run->src };
	struct buf msg = { 0 }, out = { 0 };
	CK_SESSION_HANDLE side = run->tgt;
	CK_ULONG step = 1, status = 0;
	CK_RV rv = fetch(start_fn, &sc, &msg);

	for (int round = 0; rv == CKR_OK && round < NEGO_ROUNDS; round++) {
		struct buf t;

		rv = nego_continue(run, side, step, &msg, &out, &status);
		if (rv != CKR_OK)
			break;
		step++;
		t = msg;
		msg = out;
		out = t;
		if (status == CK_SESSION_NEGOTIATION_STATUS_DONE)
			break;
		side = side == run->tgt ? run->src : run->tgt;
	}
	/* Only the responder (the target) finishes, with a message. */
	if (rv == CKR_OK && (status != CK_SESSION_NEGOTIATION_STATUS_DONE ||
			     side != run->tgt || !msg.len))
		rv = CKR_DEVICE_ERROR;
	if (rv == CKR_OK) {
		run->m4 = msg;
		msg.p = NULL;
	}
	buf_free(&msg);
	buf_free(&out);
	return rv;
}

static void migrate_close(struct cpv4_run *run)
{
	if (!run->sid_len)
		return;
	/* Already gone (expired, dropped) is fine here. */
	CA_MigrationCloseSession(run->src, run->sid_len, run->sid);
	CA_MigrationCloseSession(run->tgt, run->sid_len, run->sid);
}

/* A per-object result of @k in the batch: into the caller's array. */
static void set_rv(struct cpv4_run *run, CK_ULONG k, CK_RV r)
{
	if (r == CKR_CLONE_NOT_ATTEMPTED)
		return;
	run->data[run->idx[k]].rv = r;
	run->attempted = true;
	if (r != CKR_OK && !(run->flags & CKF_CONTINUE_ON_ERR))
		run->stop = true;
}

/* Keep only the batch entries whose result is CKR_OK; their new count. */
static CK_ULONG keep_ok(struct cpv4_run *run, CK_ULONG from, CK_ULONG n)
{
	CK_ULONG j = from;

	for (CK_ULONG k = from; k < from + n; k++) {
		if (run->result[k] != CKR_OK) {
			free(run->blob[k]);
			run->blob[k] = NULL;
			continue;
		}
		run->idx[j] = run->idx[k];
		run->type[j] = run->type[k];
		run->handle[j] = run->handle[k];
		run->len[j] = run->len[k];
		run->blob[j] = run->blob[k];
		if (j != k)
			run->blob[k] = NULL;
		j++;
	}
	return j - from;
}

static CK_CPV4_EXTRACT_PARAMS extract_of(struct cpv4_run *run, CK_ULONG n,
					 bool with_input)
{
	return (CK_CPV4_EXTRACT_PARAMS){
		.sessionIdLength = run->sid_len,
		.sessionId = run->sid,
		.inputLength = with_input ? run->m4.len : 0,
		.input = with_input ? run->m4.p : NULL,
		.extractionFlags = run->flags,
		.numberOfObjects = n,
		.objectType = run->type,
		.objectHandle = run->handle,
		.result = run->result,
		.keyBlobLength = run->len,
		.keyBlob = run->blob,
	};
}

/*
 * Extract the blobs of batch entries from .. from+n-1 (sizes known) and
 * insert those that came out on the target.
 */
static CK_RV migrate_group(struct cpv4_run *run, CK_ULONG from, CK_ULONG n)
{
	CK_CPV4_EXTRACT_PARAMS x = extract_of(run, from + n, false);
	CK_CPV4_INSERT_PARAMS in = {
		.sessionIdLength = run->sid_len,
		.sessionId = run->sid,
		.insertionFlags = run->flags,
		.storageType = run->storage,
		.objectType = run->type,
		.keyBlobLength = run->len,
		.keyBlob = run->blob,
		.result = run->result,
		.objectHandle = run->out,
	};
	bool failed;
	CK_RV rv;

	for (CK_ULONG k = from; k < from + n; k++) {
		run->result[k] = CKR_CLONE_NOT_ATTEMPTED;
		run->blob[k] = malloc(run->len[k]);
		if (!run->blob[k])
			return CKR_HOST_MEMORY;
	}
	rv = extract_request(run->src, &x, from, n, false, false, &failed);
	if (rv != CKR_OK)
		return rv;
	for (CK_ULONG k = from; k < from + n; k++)
		if (run->result[k] != CKR_OK)
			set_rv(run, k, run->result[k]);
	n = keep_ok(run, from, n);
	if (!n)
		return CKR_OK;
	in.numberOfObjects = from + n;
	for (CK_ULONG k = from; k < from + n; k++) {
		run->result[k] = CKR_CLONE_NOT_ATTEMPTED;
		run->storage[k] = PHSM_CLONE_STORAGE_AS_IS;
	}
	rv = insert_request(run->tgt, &in, from, n, &failed);
	if (rv != CKR_OK)
		return rv;
	for (CK_ULONG k = from; k < from + n; k++) {
		set_rv(run, k, run->result[k]);
		if (run->result[k] == CKR_OK)
			run->data[run->idx[k]].targetHandle = run->out[k];
	}
	return CKR_OK;
}

static void free_blobs(struct cpv4_run *run, CK_ULONG n)
{
	for (CK_ULONG k = 0; k < n; k++) {
		free(run->blob[k]);
		run->blob[k] = NULL;
	}
}

/*
 * One batch of at most PHSM_CLONE_BATCH_MAX objects: a size query on the
 * source, then groups of at most PHSM_CLONE_BATCH_BYTES extracted and
 * inserted.  Without CKF_CONTINUE_ON_ERR a failure ends the run after
 * the blobs extracted before it are inserted.
 */
static CK_RV migrate_batch(struct cpv4_run *run, CK_ULONG first, CK_ULONG n)
{
	CK_CPV4_EXTRACT_PARAMS q;
	CK_ULONG from = 0;
	bool failed, query_stop;
	CK_RV rv;

	for (CK_ULONG k = 0; k < n; k++) {
		run->idx[k] = first + k;
		run->type[k] = run->data[first + k].objectType;
		run->handle[k] = run->data[first + k].sourceHandle;
		run->result[k] = CKR_CLONE_NOT_ATTEMPTED;
		run->blob[k] = NULL;
		run->len[k] = 0;
	}
	q = extract_of(run, n, !run->m4_sent);
	rv = extract_request(run->src, &q, 0, n, true, !run->m4_sent, &failed);
	if (rv != CKR_OK)
		return rv;
	run->m4_sent = true;
	for (CK_ULONG k = 0; k < n; k++)
		if (run->result[k] != CKR_OK)
			set_rv(run, k, run->result[k]);
	n = keep_ok(run, 0, n);
	/* The objects before a failed query are still cloned. */
	query_stop = run->stop;
	run->stop = false;
	while (from < n && rv == CKR_OK && !run->stop) {
		CK_CPV4_EXTRACT_PARAMS g = extract_of(run, n, false);
		CK_ULONG cnt = extract_count(&g, from, false);

		rv = migrate_group(run, from, cnt);
		free_blobs(run, n);
		from += cnt;
	}
	run->stop |= query_stop;
	return rv;
}

/* The CPv4 run of CA_MigrateKeys: negotiate, migrate, close. */
static CK_RV migrate_cpv4(CK_SESSION_HANDLE src, CK_SESSION_HANDLE tgt,
			  CK_ULONG flags, CK_ULONG n,
			  CK_OBJECT_MIGRATION_DATA *data, bool *attempted)
{
	struct cpv4_run *run = calloc(1, sizeof(*run));
	CK_RV rv;

	if (!run)
		return CKR_HOST_MEMORY;
	run->src = src;
	run->tgt = tgt;
	run->flags = flags;
	run->data = data;
	rv = negotiate(run);
	for (CK_ULONG first = 0; rv == CKR_OK && first < n && !run->stop;
	     first += PHSM_CLONE_BATCH_MAX) {
		CK_ULONG cnt = n - first < PHSM_CLONE_BATCH_MAX ?
			       n - first : PHSM_CLONE_BATCH_MAX;

		rv = migrate_batch(run, first, cnt);
	}
	free_blobs(run, PHSM_CLONE_BATCH_MAX);
	migrate_close(run);
	buf_free(&run->m4);
	*attempted = run->attempted;
	free(run);
	return rv;
}

/* ---- top level: CPv3 --------------------------------------------------- */

struct cpv3_ctx {
	CK_SESSION_HANDLE src, tgt;
	CK_ULONG type;
	CK_OBJECT_HANDLE obj;
	struct buf twc, part1;
};

static CK_RV twc_fn(void *ctx, CK_BYTE_PTR out, CK_ULONG_PTR len)
{
	struct cpv3_ctx *x = ctx;

	return CA_CloneAsSourceInit(x->src, NULL, 0, out, len, CK_FALSE);
}

static CK_RV part1_fn(void *ctx, CK_BYTE_PTR out, CK_ULONG_PTR len)
{
	struct cpv3_ctx *x = ctx;

	return CA_CloneAsTargetInit(x->tgt, x->twc.p, x->twc.len, NULL, 0,
				    CK_FALSE, out, len);
}

static CK_RV part2_fn(void *ctx, CK_BYTE_PTR out, CK_ULONG_PTR len)
{
	struct cpv3_ctx *x = ctx;

	return CA_CloneAsSource(x->src, x->type, x->obj, x->part1.p,
				x->part1.len, CK_FALSE, out, len);
}

/* Errors of CA_CloneAsSource that are about the object, not the run. */
static bool source_object_error(CK_RV rv)
{
	return rv == CKR_OBJECT_HANDLE_INVALID ||
	       rv == CKR_OBJECT_TYPE_INVALID || rv == CKR_KEY_HANDLE_INVALID;
}

/* Errors of CA_CloneAsTarget that end the run rather than one object. */
static bool target_core_error(CK_RV rv)
{
	switch (rv) {
	case CKR_SESSION_HANDLE_INVALID: case CKR_SESSION_CLOSED:
	case CKR_USER_NOT_LOGGED_IN: case CKR_CRYPTOKI_NOT_INITIALIZED:
	case CKR_DEVICE_ERROR: case CKR_DEVICE_REMOVED:
	case CKR_HOST_MEMORY: case CKR_TOKEN_NOT_PRESENT:
	case CKR_GENERAL_ERROR: case CKR_FUNCTION_FAILED:
	case CKR_PROTOCOL_DISABLED: case CKR_OPERATION_NOT_INITIALIZED:
	case CKR_ARGUMENTS_BAD:
		return true;
	default:
		return false;
	}
}

/*
 * One four-call CPv3 exchange ([V3] steps 1-4).  The return value is a
 * core error; *obj_rv the object's own result once it was attempted.
 */
static CK_RV cpv3_one(CK_SESSION_HANDLE src, CK_SESSION_HANDLE tgt,
		      CK_ULONG type, CK_OBJECT_HANDLE obj,
		      CK_OBJECT_HANDLE *clone, CK_RV *obj_rv, bool *attempted)
{
	struct cpv3_ctx x = { .src = src, .tgt = tgt, .type = type,
			      .obj = obj };
	struct buf part2 = { 0 };
	CK_RV rv = fetch(twc_fn, &x, &x.twc);

	if (rv == CKR_OK)
		rv = fetch(part1_fn, &x, &x.part1);
	if (rv == CKR_OK) {
		rv = fetch(part2_fn, &x, &part2);
		if (source_object_error(rv)) {
			*obj_rv = rv;
			*attempted = true;
			rv = CKR_OK;
			goto out;
		}
	}
	if (rv == CKR_OK) {
		/* A parameter names itself on the target too; objects: 0. */
		rv = CA_CloneAsTarget(tgt, NULL, 0, part2.p, part2.len, type,
				      type == CK_PARAM_ELEMENT ? obj : 0,
				      CK_FALSE, clone);
		*attempted = true;
		if (!target_core_error(rv)) {
			*obj_rv = rv;
			rv = CKR_OK;
		}
	}
out:
	buf_free(&x.twc);
	buf_free(&x.part1);
	buf_free(&part2);
	return rv;
}

static CK_RV migrate_cpv3(CK_SESSION_HANDLE src, CK_SESSION_HANDLE tgt,
			  CK_ULONG flags, CK_ULONG n,
			  CK_OBJECT_MIGRATION_DATA *data, bool *attempted)
{
	for (CK_ULONG i = 0; i < n; i++) {
		CK_OBJECT_HANDLE clone = CK_INVALID_HANDLE;
		CK_RV r = CKR_CLONE_NOT_ATTEMPTED;
		CK_RV rv = cpv3_one(src, tgt, data[i].objectType,
				    data[i].sourceHandle, &clone, &r,
				    attempted);

		if (rv != CKR_OK)
			return rv;
		data[i].rv = r;
		if (r == CKR_OK)
			data[i].targetHandle = clone;
		else if (!(flags & CKF_CONTINUE_ON_ERR))
			break;
	}
	return CKR_OK;
}

/* ---- top level: the calls ------------------------------------------------ */

static CK_RV migrate(CK_SESSION_HANDLE src, CK_SESSION_HANDLE tgt,
		     CK_ULONG flags, CK_ULONG n, CK_OBJECT_MIGRATION_DATA *data,
		     enum proto p, bool *attempted)
{
	if (p == PROTO_NONE)
		return CKR_PROTOCOL_DISABLED;
	if (p == PROTO_CPV4)
		return migrate_cpv4(src, tgt, flags, n, data, attempted);
	return migrate_cpv3(src, tgt, flags, n, data, attempted);
}

/*
 * Run with the protocol of choice; if it turns out disabled before any
 * object was tried (a policy changed meanwhile), read the policies again
 * and fall back once.
 */
static CK_RV migrate_with_fallback(CK_SESSION_HANDLE src, CK_SESSION_HANDLE tgt,
				   const CK_SLOT_ID slots[2], CK_ULONG flags,
				   CK_ULONG n, CK_OBJECT_MIGRATION_DATA *data,
				   enum proto prefer)
{
	enum proto p;
	bool attempted = false;
	CK_RV rv = choose_proto(slots, prefer, PROTO_NONE, &p);

	if (rv == CKR_OK)
		rv = migrate(src, tgt, flags, n, data, p, &attempted);
	if (rv != CKR_PROTOCOL_DISABLED || attempted || p == PROTO_NONE)
		return rv;
	rv = choose_proto(slots, prefer, p, &p);
	if (rv == CKR_OK)
		rv = migrate(src, tgt, flags, n, data, p, &attempted);
	return rv;
}

PHSM_EXPORT CK_RV CA_MigrateKeys(CK_SESSION_HANDLE sourceSession,
				 CK_SESSION_HANDLE targetSession,
				 CK_ULONG migrationFlags,
				 CK_ULONG numberOfObjects,
				 CK_OBJECT_MIGRATION_DATA_PTR migrationData)
{
	CK_SLOT_ID slots[2];
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	if (!numberOfObjects || !migrationData ||
	    (migrationFlags & ~CKF_CONTINUE_ON_ERR))
		return CKR_ARGUMENTS_BAD;
	rv = session_pair(sourceSession, targetSession, slots);
	if (rv != CKR_OK)
		return rv;
	for (CK_ULONG i = 0; i < numberOfObjects; i++) {
		migrationData[i].rv = CKR_CLONE_NOT_ATTEMPTED;
		migrationData[i].targetHandle = CK_INVALID_HANDLE;
	}
	return migrate_with_fallback(sourceSession, targetSession, slots,
				     migrationFlags, numberOfObjects,
				     migrationData, PROTO_CPV4);
}

PHSM_EXPORT CK_RV CA_CloneObject(CK_SESSION_HANDLE hTargetSession,
				 CK_SESSION_HANDLE hSourceSession,
				 CK_ULONG ulObjectType,
				 CK_OBJECT_HANDLE hObjectHandle,
				 CK_OBJECT_HANDLE_PTR phClonedObject)
{
	CK_OBJECT_MIGRATION_DATA d = {
		.objectType = ulObjectType,
		.sourceHandle = hObjectHandle,
		.targetHandle = CK_INVALID_HANDLE,
		.rv = CKR_CLONE_NOT_ATTEMPTED,
	};
	CK_SLOT_ID slots[2];
	CK_RV rv = need_init();

	if (rv != CKR_OK)
		return rv;
	if (!phClonedObject)
		return CKR_ARGUMENTS_BAD;
	rv = session_pair(hSourceSession, hTargetSession, slots);
	if (rv == CKR_OK)
		rv = migrate_with_fallback(hSourceSession, hTargetSession,
					   slots, 0, 1, &d, PROTO_CPV3);
	if (rv != CKR_OK)
		return rv;
	/* One object: its own result is the call's. */
	if (d.rv != CKR_OK)
		return d.rv;
	*phClonedObject = d.targetHandle;
	return CKR_OK;
}
