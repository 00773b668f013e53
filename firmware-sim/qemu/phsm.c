/*
 * phsm: the PCIe HSM card of the phsm project, in front of its firmware.
 *
 * The device implements the host interface of uapi/phsm_dev.h (registers in
 * BAR0, MSI-X in BAR2, one submission and one completion ring in guest
 * memory) and carries each command's message, unchanged but for its tag,
 * to the card firmware (phsm-fw --bridge) over a chardev socket.  See
 * Documentation/phsm/device.rst (the contract) and qemu.rst (this model).
 *
 * Threading: everything runs in the main loop under the BQL.  MMIO handlers
 * only record what the guest wrote and kick the bottom half; the bottom
 * half (guarded against re-entrant MMIO) does all DMA: it handles the
 * firmware's answers, fetches ring entries, applies aborts and posts
 * completions.  Messages go to the firmware with non-blocking writes
 * (resumed by a chardev watch) and come back through the chardev read
 * handler, so no vCPU ever waits for the firmware.
 *
 * Copyright (c) 2026 the phsm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/bswap.h"
#include "qapi/error.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/pcie.h"
#include "hw/pci/msi.h"
#include "hw/pci/msix.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "chardev/char-fe.h"
#include "chardev/char-socket.h"
#include "migration/vmstate.h"
#include "qom/object.h"

#include "hw/misc/phsm/phsm_dev.h"
#include "hw/misc/phsm/phsm_proto.h"

#define TYPE_PHSM "phsm"
OBJECT_DECLARE_SIMPLE_TYPE(PhsmState, PHSM)

/* What this model offers in CAP, MAX_MSG, MAX_CTX and MAX_SGE. */
#define PHSM_MQES           256         /* ring entries, at most */
#define PHSM_TO_UNITS       4           /* 2 s; ready transitions are instant */
#define PHSM_MAX_MSG        (1u << 20)
#define PHSM_MAX_CTX        1024
#define PHSM_MAX_SGE        (PHSM_MAX_MSG / 4096 + 1)

#define PHSM_HDR_LEN        ((uint32_t)sizeof(struct phsm_msg_hdr))
#define PHSM_SQE_SIZE       ((uint32_t)sizeof(struct phsm_sqe))
#define PHSM_CQE_SIZE       ((uint32_t)sizeof(struct phsm_cqe))
#define PHSM_SGE_SIZE       ((uint32_t)sizeof(struct phsm_sge))

#define HDR_OFF(field)      offsetof(struct phsm_msg_hdr, field)

/*
 * Tags on the bridge: a command's is its slot and the slot's generation,
 * so an answer to a command the device has since forgotten (a reset)
 * matches nothing.  Messages of the device's own (closing contexts at a
 * reset) carry PHSM_TAG_OWN and their answers are dropped.
 */
#define PHSM_TAG_OWN        0x80000000u
#define PHSM_TAG_GEN_MASK   0x7fffu

typedef enum PhsmCmdState {
    CMD_FREE,
    CMD_WAITING,        /* fetched; its message waits to go to the firmware */
    CMD_SENT,           /* in the firmware */
    CMD_CLOSING,        /* APP_CLOSE waiting for its context's commands */
    CMD_DONE,           /* completed; waits for room in the CQ */
} PhsmCmdState;

typedef struct PhsmSeg {
    uint64_t addr;
    uint32_t len;
} PhsmSeg;

/* A guest buffer: one segment, or the segments of an SG list. */
typedef struct PhsmBuf {
    PhsmSeg *segs;
    unsigned int nsegs;
    uint32_t size;
} PhsmBuf;

typedef struct PhsmCtx PhsmCtx;
typedef struct PhsmTx PhsmTx;

typedef struct PhsmCmd {
    PhsmCmdState state;
    uint16_t slot;
    uint16_t gen;
    uint16_t cid;
    uint8_t opcode;
    uint32_t host_tag;      /* MSG: the request's tag, given back */
    PhsmCtx *ctx;
    PhsmBuf resp;           /* MSG: where the response goes */
    PhsmTx *tx;             /* CMD_WAITING: its message */
    uint16_t status;        /* CMD_DONE: PHSM_CQE_* */
    uint32_t resp_len;
    QTAILQ_ENTRY(PhsmCmd) link;     /* on done */
} PhsmCmd;

struct PhsmCtx {
    uint64_t id;
    uint32_t epoch;         /* firmware connection it was opened on */
    bool close_sent;
    bool closing;           /* APP_CLOSE fetched: no new commands */
    bool dead;              /* the firmware refused to open it */
    unsigned int active;    /* its commands not completed, APP_OPEN included */
    PhsmCmd *close_cmd;
};

/* A message on its way to the firmware. */
struct PhsmTx {
    uint8_t *buf;
    uint32_t len;
    uint32_t off;
    PhsmCmd *cmd;           /* NULL: no command waits for it any more */
    QTAILQ_ENTRY(PhsmTx) link;
};

/* An answer from the firmware, waiting for the bottom half. */
typedef struct PhsmRx {
    uint8_t *buf;
    uint32_t len;
    QSIMPLEQ_ENTRY(PhsmRx) link;
} PhsmRx;

struct PhsmState {
    PCIDevice parent_obj;

    MemoryRegion mmio;
    CharBackend chr;
    QEMUBH *bh;
    char *serial;

    /* Knobs for tests (QOM properties, settable at run time). */
    bool stall;
    bool removed;

    /* Registers. */
    uint32_t cc;
    uint32_t csts;
    uint32_t intmask;
    uint32_t err_code;
    uint32_t err_info;
    uint32_t err_count;
    bool err_pending;       /* PHSM_INT_ERR */
    uint32_t qdepth;
    uint64_t sq_base;
    uint64_t cq_base;

    /* The queues, as latched when CC.EN was set. */
    uint32_t depth;
    uint64_t sq_addr;
    uint64_t cq_addr;
    uint32_t sq_head;
    uint32_t sq_tail;
    uint32_t cq_head;
    uint32_t cq_tail;
    bool phase;
    bool cq_full_noted;

    /* Commands. */
    PhsmCmd cmds[PHSM_MQES];
    uint16_t free_slots[PHSM_MQES];
    unsigned int nfree;
    QTAILQ_HEAD(, PhsmCmd) done;
    uint16_t aborts[PHSM_MQES];
    unsigned int naborts;

    /* Application contexts, by id. */
    GHashTable *ctxs;

    /* The firmware connection. */
    bool fw_connected;
    uint32_t fw_epoch;
    uint32_t own_tag;
    guint watch;
    QTAILQ_HEAD(, PhsmTx) txq;
    QSIMPLEQ_HEAD(, PhsmRx) rxq;
    uint8_t rx_hdr[sizeof(struct phsm_msg_hdr)];
    uint8_t *rx_buf;
    uint32_t rx_len;
    uint32_t rx_have;
};

static void phsm_kick(PhsmState *s)
{
    qemu_bh_schedule(s->bh);
}

static bool phsm_running(PhsmState *s)
{
    return (s->csts & (PHSM_CSTS_RDY | PHSM_CSTS_CFS)) == PHSM_CSTS_RDY;
}

/* ---- interrupts ------------------------------------------------------ */

static uint32_t phsm_isr(PhsmState *s)
{
    uint32_t isr = 0;

    if ((s->csts & PHSM_CSTS_RDY) && s->cq_tail != s->cq_head) {
        isr |= PHSM_INT_CQ;
    }
    if (s->err_pending) {
        isr |= PHSM_INT_ERR;
    }
    return isr;
}

static void phsm_update_intx(PhsmState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    bool level = !s->removed && !msix_enabled(pdev) && !msi_enabled(pdev) &&
                 (phsm_isr(s) & ~s->intmask);

    pci_set_irq(pdev, level);
}

/* @causes just became pending (or were unmasked while pending). */
static void phsm_signal(PhsmState *s, uint32_t causes)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    causes &= ~s->intmask;
    if (!s->removed && causes) {
        if (msix_enabled(pdev)) {
            if (causes & PHSM_INT_CQ) {
                msix_notify(pdev, PHSM_MSIX_VEC_CQ);
            }
            if (causes & PHSM_INT_ERR) {
                msix_notify(pdev, PHSM_MSIX_VEC_ERR);
            }
        } else if (msi_enabled(pdev)) {
            msi_notify(pdev, 0);
        }
    }
    phsm_update_intx(s);
}

/* ---- device errors --------------------------------------------------- */

static const char *phsm_err_name(uint32_t code)
{
    switch (code) {
    case PHSM_ERR_REG_ACCESS:      return "invalid register access";
    case PHSM_ERR_REG_LOCKED:      return "queue register locked";
    case PHSM_ERR_BAD_VALUE:       return "reserved bits set";
    case PHSM_ERR_QUEUE_CONFIG:    return "bad queue configuration";
    case PHSM_ERR_SQ_TAIL:         return "SQ tail doorbell out of range";
    case PHSM_ERR_CQ_HEAD:         return "CQ head doorbell out of range";
    case PHSM_ERR_NOT_READY:       return "doorbell while not ready";
    case PHSM_ERR_CQ_FULL:         return "completion waits for CQ space";
    case PHSM_ERR_FATAL_DMA:       return "ring DMA failed";
    case PHSM_ERR_FATAL_FIRMWARE:  return "firmware not reachable";
    case PHSM_ERR_FATAL_INTERNAL:  return "internal failure";
    default:                       return "?";
    }
}

/* Record a device error (PHSM_REG_ERR_*); codes from 0x80 are fatal. */
static void phsm_error(PhsmState *s, uint32_t code, uint32_t info)
{
    bool fatal = code >= PHSM_ERR_FATAL_DMA;

    if (code == PHSM_ERR_FATAL_FIRMWARE || code == PHSM_ERR_FATAL_INTERNAL) {
        warn_report("phsm: %s", phsm_err_name(code));
    } else {
        qemu_log_mask(LOG_GUEST_ERROR, "phsm: %s (0x%x, info 0x%x)\n",
                      phsm_err_name(code), code, info);
    }
    if (s->err_code == PHSM_ERR_NONE ||
        (fatal && s->err_code < PHSM_ERR_FATAL_DMA)) {
        s->err_code = code;
        s->err_info = info;
    }
    if (s->err_count != UINT32_MAX) {
        s->err_count++;
    }
    if (fatal) {
        s->csts |= PHSM_CSTS_CFS;
    }
    s->err_pending = true;
    phsm_signal(s, PHSM_INT_ERR);
}

/* ---- the firmware connection: sending -------------------------------- */

static void phsm_tx_run(PhsmState *s);

static gboolean phsm_tx_watch(void *do_not_use, GIOCondition cond,
                              void *opaque)
{
    PhsmState *s = opaque;

    s->watch = 0;
    phsm_tx_run(s);
    return G_SOURCE_REMOVE;
}

static void phsm_tx_free(PhsmState *s, PhsmTx *tx)
{
    QTAILQ_REMOVE(&s->txq, tx, link);
    if (tx->cmd) {
        tx->cmd->tx = NULL;
    }
    g_free(tx->buf);
    g_free(tx);
}

/* Write queued messages until done or the socket is full. */
static void phsm_tx_run(PhsmState *s)
{
    PhsmTx *tx;

    while (s->fw_connected && !s->watch && (tx = QTAILQ_FIRST(&s->txq))) {
        int n = qemu_chr_fe_write(&s->chr, tx->buf + tx->off,
                                  MIN(tx->len - tx->off, 1u << 30));

        if (n <= 0) {
            if (n < 0 && errno != EAGAIN) {
                return;     /* the chardev reports the disconnect */
            }
            s->watch = qemu_chr_fe_add_watch(&s->chr, G_IO_OUT | G_IO_HUP,
                                             phsm_tx_watch, s);
            return;
        }
        tx->off += n;
        if (tx->off == tx->len) {
            if (tx->cmd) {
                tx->cmd->state = CMD_SENT;
            }
            phsm_tx_free(s, tx);
        }
    }
}

/* Queue @buf (ownership passes) for the firmware. */
static void phsm_tx_queue(PhsmState *s, uint8_t *buf, uint32_t len,
                          PhsmCmd *cmd)
{
    PhsmTx *tx = g_new0(PhsmTx, 1);

    tx->buf = buf;
    tx->len = len;
    tx->cmd = cmd;
    if (cmd) {
        cmd->tx = tx;
        cmd->state = CMD_WAITING;
    }
    QTAILQ_INSERT_TAIL(&s->txq, tx, link);
}

/* A header-only message of the transport (APP_OPEN, APP_CLOSE). */
static uint8_t *phsm_bare_msg(uint16_t opcode, uint64_t app_ctx, uint32_t tag)
{
    uint8_t *m = g_malloc0(PHSM_HDR_LEN);

    stl_le_p(m + HDR_OFF(magic), PHSM_PROTO_MAGIC);
    stw_le_p(m + HDR_OFF(version), PHSM_PROTO_VERSION);
    stw_le_p(m + HDR_OFF(opcode), opcode);
    stl_le_p(m + HDR_OFF(length), PHSM_HDR_LEN);
    stq_le_p(m + HDR_OFF(app_ctx), app_ctx);
    stl_le_p(m + HDR_OFF(tag), tag);
    return m;
}

static uint32_t phsm_cmd_tag(PhsmCmd *cmd)
{
    return (uint32_t)(cmd->gen & PHSM_TAG_GEN_MASK) << 16 | cmd->slot;
}

/* ---- contexts -------------------------------------------------------- */

static PhsmCtx *phsm_ctx_find(PhsmState *s, uint64_t id)
{
    return g_hash_table_lookup(s->ctxs, &id);
}

static void phsm_ctx_remove(PhsmState *s, PhsmCtx *ctx)
{
    g_hash_table_remove(s->ctxs, &ctx->id);     /* frees it */
}

static void phsm_send_close(PhsmState *s, PhsmCtx *ctx, PhsmCmd *cmd)
{
    uint32_t tag = cmd ? phsm_cmd_tag(cmd) : PHSM_TAG_OWN | s->own_tag++;

    ctx->close_sent = true;
    phsm_tx_queue(s, phsm_bare_msg(PHSM_OP_APP_CLOSE, ctx->id, tag),
                  PHSM_HDR_LEN, cmd);
}

/* ---- commands -------------------------------------------------------- */

static void phsm_buf_clear(PhsmBuf *b)
{
    g_free(b->segs);
    memset(b, 0, sizeof(*b));
}

static void phsm_cmd_free(PhsmState *s, PhsmCmd *cmd)
{
    phsm_buf_clear(&cmd->resp);
    if (cmd->tx) {
        cmd->tx->cmd = NULL;
        cmd->tx = NULL;
    }
    cmd->state = CMD_FREE;
    cmd->ctx = NULL;
    cmd->gen++;
    s->free_slots[s->nfree++] = cmd->slot;
}

static void phsm_complete(PhsmState *s, PhsmCmd *cmd, uint16_t status,
                          uint32_t resp_len);

/* One of @ctx's commands is finished: a waiting close may go now. */
static void phsm_ctx_idle_check(PhsmState *s, PhsmCtx *ctx)
{
    if (ctx->active) {
        return;
    }
    if (ctx->close_cmd && !ctx->close_sent) {
        PhsmCmd *close = ctx->close_cmd;

        if (!s->fw_connected || ctx->epoch != s->fw_epoch) {
            /* The firmware that had it open is gone. */
            phsm_complete(s, close, PHSM_CQE_SUCCESS, 0);
            return;
        }
        phsm_send_close(s, ctx, close);
    } else if (ctx->dead && !ctx->close_cmd) {
        phsm_ctx_remove(s, ctx);
    }
}

/* Complete @cmd with @status; its CQ entry is posted in order. */
static void phsm_complete(PhsmState *s, PhsmCmd *cmd, uint16_t status,
                          uint32_t resp_len)
{
    PhsmCtx *ctx = cmd->ctx;

    if (cmd->tx) {
        phsm_tx_free(s, cmd->tx);
    }
    phsm_buf_clear(&cmd->resp);
    cmd->status = status;
    cmd->resp_len = resp_len;
    cmd->state = CMD_DONE;
    cmd->ctx = NULL;
    QTAILQ_INSERT_TAIL(&s->done, cmd, link);
    if (ctx && cmd->opcode == PHSM_SQE_APP_CLOSE) {
        phsm_ctx_remove(s, ctx);
    } else if (ctx) {
        ctx->active--;
        phsm_ctx_idle_check(s, ctx);
    }
}

/* ---- guest buffers --------------------------------------------------- */

static bool phsm_range_ok(uint64_t addr, uint64_t len)
{
    return addr != 0 && len != 0 && addr + (len - 1) >= addr;
}

/*
 * Describe a buffer of @size bytes at @addr, or behind the SG list at
 * @addr.  Returns a PHSM_CQE_* status; PHSM_CQE_DMA_READ means the list
 * could not be read (the caller reports it after the other checks).
 */
static uint16_t phsm_buf_map(PhsmState *s, uint64_t addr, uint32_t size,
                             bool sgl, PhsmBuf *b)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    uint64_t sum = 0;

    memset(b, 0, sizeof(*b));
    b->size = size;
    if (!sgl) {
        if (!phsm_range_ok(addr, size)) {
            return PHSM_CQE_INVALID_FIELD;
        }
        b->segs = g_new(PhsmSeg, 1);
        b->segs[0] = (PhsmSeg) { addr, size };
        b->nsegs = 1;
        return PHSM_CQE_SUCCESS;
    }
    if (addr == 0 || addr % PHSM_SGL_ALIGN) {
        return PHSM_CQE_INVALID_FIELD;
    }
    b->segs = g_new(PhsmSeg, PHSM_MAX_SGE);
    while (sum < size) {
        uint64_t at = addr + (uint64_t)b->nsegs * PHSM_SGE_SIZE;
        struct phsm_sge sge;
        uint64_t seg_addr;
        uint32_t seg_len;

        if (b->nsegs == PHSM_MAX_SGE || at < addr) {
            return PHSM_CQE_INVALID_FIELD;
        }
        if (pci_dma_read(pdev, at, &sge, sizeof(sge)) != MEMTX_OK) {
            return PHSM_CQE_DMA_READ;
        }
        seg_addr = le64_to_cpu(sge.addr);
        seg_len = le32_to_cpu(sge.len);
        if (sge.reserved || !phsm_range_ok(seg_addr, seg_len)) {
            return PHSM_CQE_INVALID_FIELD;
        }
        seg_len = MIN(seg_len, size - sum);
        b->segs[b->nsegs++] = (PhsmSeg) { seg_addr, seg_len };
        sum += seg_len;
    }
    return PHSM_CQE_SUCCESS;
}

static bool phsm_buf_read(PhsmState *s, const PhsmBuf *b, uint8_t *dst)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    for (unsigned int i = 0; i < b->nsegs; i++) {
        if (pci_dma_read(pdev, b->segs[i].addr, dst,
                         b->segs[i].len) != MEMTX_OK) {
            return false;
        }
        dst += b->segs[i].len;
    }
    return true;
}

/* Write @len (<= b->size) bytes into the buffer. */
static bool phsm_buf_write(PhsmState *s, const PhsmBuf *b, const uint8_t *src,
                           uint32_t len)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    for (unsigned int i = 0; i < b->nsegs && len; i++) {
        uint32_t n = MIN(len, b->segs[i].len);

        if (pci_dma_write(pdev, b->segs[i].addr, src, n) != MEMTX_OK) {
            return false;
        }
        src += n;
        len -= n;
    }
    return true;
}

/* ---- the firmware's answers ------------------------------------------ */

/* Answer a MSG request on the device's own: a bare header with @status. */
static void phsm_answer_self(PhsmState *s, PhsmCmd *cmd, const uint8_t *req,
                             uint32_t status)
{
    uint8_t resp[sizeof(struct phsm_msg_hdr)] = { 0 };

    stl_le_p(resp + HDR_OFF(magic), PHSM_PROTO_MAGIC);
    stw_le_p(resp + HDR_OFF(version), PHSM_PROTO_VERSION);
    memcpy(resp + HDR_OFF(opcode), req + HDR_OFF(opcode), 2);
    stl_le_p(resp + HDR_OFF(length), PHSM_HDR_LEN);
    stl_le_p(resp + HDR_OFF(flags), PHSM_MSG_F_RESPONSE);
    memcpy(resp + HDR_OFF(app_ctx), req + HDR_OFF(app_ctx), 8);
    memcpy(resp + HDR_OFF(tag), req + HDR_OFF(tag), 4);
    stl_le_p(resp + HDR_OFF(status), status);
    if (phsm_buf_write(s, &cmd->resp, resp, PHSM_HDR_LEN)) {
        phsm_complete(s, cmd, PHSM_CQE_SUCCESS, PHSM_HDR_LEN);
    } else {
        phsm_complete(s, cmd, PHSM_CQE_DMA_WRITE, 0);
    }
}

static void phsm_msg_answered(PhsmState *s, PhsmCmd *cmd, uint8_t *resp,
                              uint32_t len)
{
    if (cmd->ctx && cmd->ctx->dead) {
        phsm_complete(s, cmd, PHSM_CQE_BAD_CONTEXT, 0);
        return;
    }
    if (len > cmd->resp.size) {
        phsm_complete(s, cmd, PHSM_CQE_RESP_OVERFLOW, len);
        return;
    }
    stl_le_p(resp + HDR_OFF(tag), cmd->host_tag);
    if (phsm_buf_write(s, &cmd->resp, resp, len)) {
        phsm_complete(s, cmd, PHSM_CQE_SUCCESS, len);
    } else {
        phsm_complete(s, cmd, PHSM_CQE_DMA_WRITE, 0);
    }
}

static void phsm_open_answered(PhsmState *s, PhsmCmd *cmd, uint32_t status)
{
    switch (status) {
    case PHSM_ST_OK:
        phsm_complete(s, cmd, PHSM_CQE_SUCCESS, 0);
        return;
    case PHSM_ST_NO_MEMORY:
        cmd->ctx->dead = true;
        phsm_complete(s, cmd, PHSM_CQE_NO_RESOURCES, 0);
        return;
    case PHSM_ST_BAD_CONTEXT:
        cmd->ctx->dead = true;
        phsm_complete(s, cmd, PHSM_CQE_BAD_CONTEXT, 0);
        return;
    default:
        warn_report("phsm: the firmware refused APP_OPEN (status %u)", status);
        cmd->ctx->dead = true;
        phsm_complete(s, cmd, PHSM_CQE_INTERNAL, 0);
        return;
    }
}

static void phsm_rx_handle(PhsmState *s, uint8_t *msg, uint32_t len)
{
    uint32_t tag = ldl_le_p(msg + HDR_OFF(tag));
    uint32_t slot = tag & 0xffff;
    PhsmCmd *cmd;

    if (tag & PHSM_TAG_OWN) {
        return;     /* a close of the device's own */
    }
    cmd = slot < PHSM_MQES ? &s->cmds[slot] : NULL;
    if (!cmd || cmd->state != CMD_SENT || phsm_cmd_tag(cmd) != tag) {
        /* Answers to commands forgotten at a reset end up here. */
        return;
    }
    switch (cmd->opcode) {
    case PHSM_SQE_MSG:
        phsm_msg_answered(s, cmd, msg, len);
        break;
    case PHSM_SQE_APP_OPEN:
        phsm_open_answered(s, cmd, ldl_le_p(msg + HDR_OFF(status)));
        break;
    default:
        phsm_complete(s, cmd, PHSM_CQE_SUCCESS, 0);
        break;
    }
}

static void phsm_rx_drain(PhsmState *s)
{
    PhsmRx *rx;

    while ((rx = QSIMPLEQ_FIRST(&s->rxq))) {
        QSIMPLEQ_REMOVE_HEAD(&s->rxq, link);
        phsm_rx_handle(s, rx->buf, rx->len);
        g_free(rx->buf);
        g_free(rx);
    }
}

/* ---- fetching -------------------------------------------------------- */

/* Checks 1 to 6 of device.rst "Validating an entry". */
static uint16_t phsm_check_sqe(PhsmState *s, const struct phsm_sqe *e,
                               PhsmCmd *cmd, PhsmBuf *req, bool *dma_failed)
{
    uint64_t app_ctx = le64_to_cpu(e->app_ctx);
    uint32_t req_len = le32_to_cpu(e->req_len);
    uint32_t resp_cap = le32_to_cpu(e->resp_cap);
    uint64_t req_addr = le64_to_cpu(e->req_addr);
    uint64_t resp_addr = le64_to_cpu(e->resp_addr);
    bool msg = e->opcode == PHSM_SQE_MSG;
    PhsmCtx *ctx;
    uint16_t st;

    if (!msg && e->opcode != PHSM_SQE_APP_OPEN &&
        e->opcode != PHSM_SQE_APP_CLOSE) {
        return PHSM_CQE_INVALID_OPCODE;
    }
    if (e->reserved0 || e->reserved1[0] || e->reserved1[1] ||
        e->reserved1[2] || (e->flags & ~PHSM_SQE_F_ALL) ||
        (!msg && (e->flags || req_len || req_addr || resp_addr ||
                  resp_cap))) {
        return PHSM_CQE_INVALID_FIELD;
    }
    if (msg && (req_len < PHSM_HDR_LEN || req_len > PHSM_MAX_MSG ||
                resp_cap < PHSM_HDR_LEN)) {
        return PHSM_CQE_INVALID_LENGTH;
    }
    if (msg) {
        st = phsm_buf_map(s, req_addr, req_len,
                          e->flags & PHSM_SQE_F_REQ_SGL, req);
        if (st == PHSM_CQE_DMA_READ) {
            *dma_failed = true;
        } else if (st) {
            return st;
        }
        st = phsm_buf_map(s, resp_addr, MIN(resp_cap, PHSM_MAX_MSG),
                          e->flags & PHSM_SQE_F_RESP_SGL, &cmd->resp);
        if (st == PHSM_CQE_DMA_READ) {
            *dma_failed = true;
        } else if (st) {
            return st;
        }
    }
    ctx = app_ctx ? phsm_ctx_find(s, app_ctx) : NULL;
    if (app_ctx == 0) {
        return PHSM_CQE_BAD_CONTEXT;
    }
    if (e->opcode == PHSM_SQE_APP_OPEN) {
        if (ctx) {
            return PHSM_CQE_BAD_CONTEXT;
        }
        if (g_hash_table_size(s->ctxs) >= PHSM_MAX_CTX) {
            return PHSM_CQE_NO_RESOURCES;
        }
    } else if (!ctx || ctx->closing || ctx->dead) {
        return PHSM_CQE_BAD_CONTEXT;
    }
    return *dma_failed ? PHSM_CQE_DMA_READ : PHSM_CQE_SUCCESS;
}

static void phsm_start_msg(PhsmState *s, PhsmCmd *cmd, PhsmBuf *req,
                           PhsmCtx *ctx)
{
    uint64_t app_ctx = ctx->id;
    uint8_t *buf = g_try_malloc(req->size);

    if (!buf) {
        phsm_complete(s, cmd, PHSM_CQE_NO_RESOURCES, 0);
        return;
    }
    if (!phsm_buf_read(s, req, buf)) {
        g_free(buf);
        phsm_complete(s, cmd, PHSM_CQE_DMA_READ, 0);
        return;
    }
    /*
     * The firmware frames the stream by magic and length, and the context
     * is the driver's promise: a request that gets these wrong is answered
     * here and never reaches the bridge.
     */
    if (ldl_le_p(buf + HDR_OFF(magic)) != PHSM_PROTO_MAGIC) {
        phsm_answer_self(s, cmd, buf, PHSM_ST_BAD_MAGIC);
    } else if (ldl_le_p(buf + HDR_OFF(length)) != req->size) {
        phsm_answer_self(s, cmd, buf, PHSM_ST_BAD_LENGTH);
    } else if (ldq_le_p(buf + HDR_OFF(app_ctx)) != app_ctx) {
        phsm_answer_self(s, cmd, buf, PHSM_ST_BAD_CONTEXT);
    } else {
        cmd->ctx = ctx;
        ctx->active++;
        cmd->host_tag = ldl_le_p(buf + HDR_OFF(tag));
        stl_le_p(buf + HDR_OFF(tag), phsm_cmd_tag(cmd));
        phsm_tx_queue(s, buf, req->size, cmd);
        return;
    }
    g_free(buf);
}

static void phsm_start_open(PhsmState *s, PhsmCmd *cmd, uint64_t app_ctx)
{
    PhsmCtx *ctx = g_new0(PhsmCtx, 1);

    ctx->id = app_ctx;
    ctx->epoch = s->fw_epoch;
    ctx->active = 1;
    g_hash_table_insert(s->ctxs, &ctx->id, ctx);
    cmd->ctx = ctx;
    phsm_tx_queue(s, phsm_bare_msg(PHSM_OP_APP_OPEN, app_ctx,
                                   phsm_cmd_tag(cmd)),
                  PHSM_HDR_LEN, cmd);
}

static void phsm_start_close(PhsmState *s, PhsmCmd *cmd, PhsmCtx *ctx)
{
    ctx->closing = true;
    ctx->close_cmd = cmd;
    cmd->ctx = ctx;
    cmd->state = CMD_CLOSING;
    /* Its commands that have not started are aborted. */
    for (unsigned int i = 0; i < PHSM_MQES; i++) {
        PhsmCmd *c = &s->cmds[i];

        if (c->state == CMD_WAITING && c->ctx == ctx &&
            c->opcode == PHSM_SQE_MSG && c->tx && c->tx->off == 0) {
            phsm_complete(s, c, PHSM_CQE_ABORTED, 0);
        }
    }
    phsm_ctx_idle_check(s, ctx);
}

/* Fetch the entry at the SQ head; false if the device must stop. */
static bool phsm_fetch_one(PhsmState *s)
{
    PhsmCmd *cmd = &s->cmds[s->free_slots[--s->nfree]];
    uint64_t addr = s->sq_addr + (uint64_t)s->sq_head * PHSM_SQE_SIZE;
    struct phsm_sqe e;
    PhsmBuf req = { 0 };
    bool dma_failed = false;
    uint16_t st;

    if (pci_dma_read(PCI_DEVICE(s), addr, &e, sizeof(e)) != MEMTX_OK) {
        s->nfree++;
        phsm_error(s, PHSM_ERR_FATAL_DMA, 0);
        return false;
    }
    s->sq_head = (s->sq_head + 1) % s->depth;
    cmd->cid = le16_to_cpu(e.cid);
    cmd->opcode = e.opcode;
    cmd->state = CMD_WAITING;
    st = phsm_check_sqe(s, &e, cmd, &req, &dma_failed);
    if (st != PHSM_CQE_SUCCESS) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "phsm: SQ entry cid %u opcode 0x%x: status 0x%x\n",
                      cmd->cid, e.opcode, st);
        phsm_buf_clear(&req);
        phsm_complete(s, cmd, st, 0);
        return true;
    }
    switch (e.opcode) {
    case PHSM_SQE_MSG:
        phsm_start_msg(s, cmd, &req, phsm_ctx_find(s, le64_to_cpu(e.app_ctx)));
        break;
    case PHSM_SQE_APP_OPEN:
        phsm_start_open(s, cmd, le64_to_cpu(e.app_ctx));
        break;
    case PHSM_SQE_APP_CLOSE:
        phsm_start_close(s, cmd, phsm_ctx_find(s, le64_to_cpu(e.app_ctx)));
        break;
    }
    phsm_buf_clear(&req);
    return true;
}

static void phsm_fetch(PhsmState *s)
{
    while (phsm_running(s) && s->sq_head != s->sq_tail &&
           PHSM_MQES - s->nfree < s->depth) {
        if (!phsm_fetch_one(s)) {
            return;
        }
    }
}

/* Abort requests, once everything up to the tail has been fetched. */
static void phsm_apply_aborts(PhsmState *s)
{
    for (unsigned int a = 0; a < s->naborts; a++) {
        for (unsigned int i = 0; i < PHSM_MQES; i++) {
            PhsmCmd *c = &s->cmds[i];

            if (c->state == CMD_WAITING && c->cid == s->aborts[a] &&
                c->opcode == PHSM_SQE_MSG && c->tx && c->tx->off == 0) {
                phsm_complete(s, c, PHSM_CQE_ABORTED, 0);
            }
        }
    }
    s->naborts = 0;
}

/* ---- completions ----------------------------------------------------- */

static bool phsm_cq_full(PhsmState *s)
{
    return (s->cq_tail + 1) % s->depth == s->cq_head;
}

static bool phsm_post_one(PhsmState *s, PhsmCmd *cmd)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    uint64_t addr = s->cq_addr + (uint64_t)s->cq_tail * PHSM_CQE_SIZE;
    struct phsm_cqe e = {
        .resp_len = cpu_to_le32(cmd->resp_len),
        .sq_head = cpu_to_le16(s->sq_head),
        .cid = cpu_to_le16(cmd->cid),
        .status = cpu_to_le16(cmd->status << 1 | s->phase),
    };

    /* The status word, with the phase tag, goes last. */
    if (pci_dma_write(pdev, addr, &e, offsetof(struct phsm_cqe, status)) ||
        pci_dma_write(pdev, addr + offsetof(struct phsm_cqe, status),
                      &e.status, sizeof(e.status))) {
        phsm_error(s, PHSM_ERR_FATAL_DMA, 1);
        return false;
    }
    s->cq_tail++;
    if (s->cq_tail == s->depth) {
        s->cq_tail = 0;
        s->phase = !s->phase;
    }
    return true;
}

static void phsm_post(PhsmState *s)
{
    PhsmCmd *cmd;
    bool posted = false;

    while (phsm_running(s) && (cmd = QTAILQ_FIRST(&s->done))) {
        if (phsm_cq_full(s)) {
            if (!s->cq_full_noted) {
                s->cq_full_noted = true;
                phsm_error(s, PHSM_ERR_CQ_FULL, cmd->cid);
            }
            break;
        }
        if (!phsm_post_one(s, cmd)) {
            break;
        }
        QTAILQ_REMOVE(&s->done, cmd, link);
        phsm_cmd_free(s, cmd);
        posted = true;
    }
    if (posted) {
        phsm_signal(s, PHSM_INT_CQ);
    }
}

/* ---- the bottom half ------------------------------------------------- */

static void phsm_bh(void *opaque)
{
    PhsmState *s = opaque;

    if (s->stall || s->removed) {
        return;
    }
    phsm_rx_drain(s);
    phsm_fetch(s);
    phsm_apply_aborts(s);
    phsm_tx_run(s);
    phsm_post(s);
    /* Posting made room for entries the host has already submitted. */
    if (phsm_running(s) && s->sq_head != s->sq_tail &&
        PHSM_MQES - s->nfree < s->depth) {
        phsm_kick(s);
    }
}

/* ---- reset ----------------------------------------------------------- */

/*
 * Forget every command and context.  Messages the firmware is reading
 * stay whole (a half-written one would break the stream), but their
 * answers will match nothing; contexts open at the firmware are closed
 * with messages of the device's own.
 */
static void phsm_forget_all(PhsmState *s)
{
    GHashTableIter it;
    gpointer value;
    PhsmTx *tx, *next_tx;
    PhsmRx *rx;
    GPtrArray *closes = g_ptr_array_new();

    QTAILQ_FOREACH_SAFE(tx, &s->txq, link, next_tx) {
        if (tx->off == 0) {
            phsm_tx_free(s, tx);
        } else if (tx->cmd) {
            tx->cmd->tx = NULL;
            tx->cmd = NULL;
        }
    }
    while ((rx = QSIMPLEQ_FIRST(&s->rxq))) {
        QSIMPLEQ_REMOVE_HEAD(&s->rxq, link);
        g_free(rx->buf);
        g_free(rx);
    }
    QTAILQ_INIT(&s->done);
    s->nfree = 0;
    for (unsigned int i = 0; i < PHSM_MQES; i++) {
        PhsmCmd *cmd = &s->cmds[i];

        if (cmd->state != CMD_FREE) {
            phsm_cmd_free(s, cmd);
        } else {
            s->free_slots[s->nfree++] = cmd->slot;
        }
    }
    s->naborts = 0;

    g_hash_table_iter_init(&it, s->ctxs);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        PhsmCtx *ctx = value;

        if (s->fw_connected && ctx->epoch == s->fw_epoch &&
            !ctx->close_sent) {
            g_ptr_array_add(closes, ctx);
        }
    }
    for (unsigned int i = 0; i < closes->len; i++) {
        phsm_send_close(s, g_ptr_array_index(closes, i), NULL);
    }
    g_ptr_array_free(closes, true);
    g_hash_table_remove_all(s->ctxs);
    phsm_tx_run(s);
}

/* Controller reset (CC.EN 1 -> 0); @function: also every register. */
static void phsm_reset(PhsmState *s, bool function)
{
    phsm_forget_all(s);
    s->cc = 0;
    s->csts = 0;
    s->intmask = PHSM_INT_ALL;
    s->depth = 0;
    s->sq_head = s->sq_tail = s->cq_head = s->cq_tail = 0;
    s->phase = true;
    s->cq_full_noted = false;
    s->stall = false;
    if (function) {
        s->qdepth = 0;
        s->sq_base = s->cq_base = 0;
        s->err_code = s->err_info = s->err_count = 0;
        s->err_pending = false;
    }
    phsm_update_intx(s);
}

static uint32_t phsm_check_queues(PhsmState *s)
{
    uint32_t q = s->qdepth;

    if (q < 2 || q > PHSM_MQES || (q & (q - 1))) {
        return PHSM_REG_QDEPTH;
    }
    if (s->sq_base % PHSM_RING_ALIGN ||
        !phsm_range_ok(s->sq_base, (uint64_t)q * PHSM_SQE_SIZE)) {
        return PHSM_REG_SQ_BASE_LO;
    }
    if (s->cq_base % PHSM_RING_ALIGN ||
        !phsm_range_ok(s->cq_base, (uint64_t)q * PHSM_CQE_SIZE)) {
        return PHSM_REG_CQ_BASE_LO;
    }
    return 0;
}

static void phsm_enable(PhsmState *s)
{
    uint32_t bad = phsm_check_queues(s);

    s->cc = PHSM_CC_EN;
    if (bad) {
        phsm_error(s, PHSM_ERR_QUEUE_CONFIG, bad);
        return;
    }
    if (!s->fw_connected) {
        phsm_error(s, PHSM_ERR_FATAL_FIRMWARE, 0);
        return;
    }
    s->depth = s->qdepth;
    s->sq_addr = s->sq_base;
    s->cq_addr = s->cq_base;
    s->sq_head = s->sq_tail = s->cq_head = s->cq_tail = 0;
    s->phase = true;
    s->cq_full_noted = false;
    s->csts = PHSM_CSTS_RDY;
}

/* ---- registers ------------------------------------------------------- */

static bool phsm_reg_known(hwaddr addr)
{
    return addr <= PHSM_REG_CQ_BASE_HI ||
           (addr >= PHSM_REG_SQ_TAIL_DB && addr <= PHSM_REG_ABORT);
}

static uint64_t phsm_mmio_read(void *opaque, hwaddr addr, unsigned size)
{
    PhsmState *s = opaque;

    if (s->removed) {
        return size == 8 ? UINT64_MAX : MAKE_64BIT_MASK(0, size * 8);
    }
    if (size != 4 || (addr & 3) || !phsm_reg_known(addr)) {
        phsm_error(s, PHSM_ERR_REG_ACCESS, addr | size << 16);
        return 0;
    }
    switch (addr) {
    case PHSM_REG_ID:           return PHSM_DEV_ID_MAGIC;
    case PHSM_REG_VERSION:
        return PHSM_DEV_VERSION(PHSM_DEV_VERSION_MAJOR, PHSM_DEV_VERSION_MINOR);
    case PHSM_REG_CAP:          return PHSM_MQES | PHSM_TO_UNITS << 16;
    case PHSM_REG_MAX_MSG:      return PHSM_MAX_MSG;
    case PHSM_REG_MAX_CTX:      return PHSM_MAX_CTX;
    case PHSM_REG_PROTO:
        return PHSM_PROTO_VERSION | PHSM_PROTO_VERSION << 16;
    case PHSM_REG_CC:           return s->cc;
    case PHSM_REG_CSTS:         return s->csts;
    case PHSM_REG_INTMS:
    case PHSM_REG_INTMC:        return s->intmask;
    case PHSM_REG_ISR:          return phsm_isr(s);
    case PHSM_REG_ERR_CODE:     return s->err_code;
    case PHSM_REG_ERR_INFO:     return s->err_info;
    case PHSM_REG_ERR_COUNT:    return s->err_count;
    case PHSM_REG_QDEPTH:       return s->qdepth;
    case PHSM_REG_MAX_SGE:      return PHSM_MAX_SGE;
    case PHSM_REG_SQ_BASE_LO:   return (uint32_t)s->sq_base;
    case PHSM_REG_SQ_BASE_HI:   return s->sq_base >> 32;
    case PHSM_REG_CQ_BASE_LO:   return (uint32_t)s->cq_base;
    case PHSM_REG_CQ_BASE_HI:   return s->cq_base >> 32;
    default:                    return 0;   /* write-only */
    }
}

static void phsm_write_cc(PhsmState *s, uint32_t v)
{
    if (v & ~PHSM_CC_EN) {
        phsm_error(s, PHSM_ERR_BAD_VALUE, PHSM_REG_CC);
        return;
    }
    if ((v & PHSM_CC_EN) && !(s->cc & PHSM_CC_EN)) {
        phsm_enable(s);
    } else if (!(v & PHSM_CC_EN) && (s->cc & PHSM_CC_EN)) {
        phsm_reset(s, false);
    }
}

static void phsm_write_ack(PhsmState *s)
{
    s->err_pending = false;
    s->err_count = 0;
    if (!(s->csts & PHSM_CSTS_CFS)) {
        s->err_code = PHSM_ERR_NONE;
        s->err_info = 0;
    }
    phsm_update_intx(s);
}

static void phsm_write_queue_reg(PhsmState *s, hwaddr addr, uint32_t v)
{
    if ((s->cc & PHSM_CC_EN) || (s->csts & PHSM_CSTS_RDY)) {
        phsm_error(s, PHSM_ERR_REG_LOCKED, addr);
        return;
    }
    switch (addr) {
    case PHSM_REG_QDEPTH:
        s->qdepth = v;
        break;
    case PHSM_REG_SQ_BASE_LO:
        s->sq_base = deposit64(s->sq_base, 0, 32, v);
        break;
    case PHSM_REG_SQ_BASE_HI:
        s->sq_base = deposit64(s->sq_base, 32, 32, v);
        break;
    case PHSM_REG_CQ_BASE_LO:
        s->cq_base = deposit64(s->cq_base, 0, 32, v);
        break;
    case PHSM_REG_CQ_BASE_HI:
        s->cq_base = deposit64(s->cq_base, 32, 32, v);
        break;
    }
}

static void phsm_write_sq_tail(PhsmState *s, uint32_t v)
{
    if (v >= s->depth) {
        phsm_error(s, PHSM_ERR_SQ_TAIL, v);
        return;
    }
    s->sq_tail = v;
    phsm_kick(s);
}

static void phsm_write_cq_head(PhsmState *s, uint32_t v)
{
    uint32_t posted = (s->cq_tail + s->depth - s->cq_head) % s->depth;

    if (v >= s->depth || (v + s->depth - s->cq_head) % s->depth > posted) {
        phsm_error(s, PHSM_ERR_CQ_HEAD, v);
        return;
    }
    s->cq_head = v;
    s->cq_full_noted = false;
    phsm_update_intx(s);
    if (!QTAILQ_EMPTY(&s->done)) {
        phsm_kick(s);
    }
}

static void phsm_write_abort(PhsmState *s, uint32_t v)
{
    if (v >> 16) {
        phsm_error(s, PHSM_ERR_BAD_VALUE, PHSM_REG_ABORT);
        return;
    }
    if (s->naborts == PHSM_MQES) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "phsm: too many aborts pending; cid %u ignored\n", v);
        return;
    }
    s->aborts[s->naborts++] = v;
    phsm_kick(s);
}

static void phsm_mmio_write(void *opaque, hwaddr addr, uint64_t val,
                            unsigned size)
{
    PhsmState *s = opaque;
    uint32_t v = val;

    if (s->removed) {
        return;
    }
    if (size != 4 || (addr & 3) || !phsm_reg_known(addr)) {
        phsm_error(s, PHSM_ERR_REG_ACCESS, addr | size << 16);
        return;
    }
    switch (addr) {
    case PHSM_REG_CC:
        phsm_write_cc(s, v);
        return;
    case PHSM_REG_INTMS:
        if (v & ~PHSM_INT_ALL) {
            phsm_error(s, PHSM_ERR_BAD_VALUE, addr);
            return;
        }
        s->intmask |= v;
        phsm_update_intx(s);
        return;
    case PHSM_REG_INTMC:
        if (v & ~PHSM_INT_ALL) {
            phsm_error(s, PHSM_ERR_BAD_VALUE, addr);
            return;
        }
        v &= s->intmask;
        s->intmask &= ~v;
        phsm_signal(s, v & phsm_isr(s));
        return;
    case PHSM_REG_ERR_CODE:
        phsm_write_ack(s);
        return;
    case PHSM_REG_QDEPTH:
    case PHSM_REG_SQ_BASE_LO:
    case PHSM_REG_SQ_BASE_HI:
    case PHSM_REG_CQ_BASE_LO:
    case PHSM_REG_CQ_BASE_HI:
        phsm_write_queue_reg(s, addr, v);
        return;
    case PHSM_REG_SQ_TAIL_DB:
    case PHSM_REG_CQ_HEAD_DB:
    case PHSM_REG_ABORT:
        if (!(s->csts & PHSM_CSTS_RDY)) {
            phsm_error(s, PHSM_ERR_NOT_READY, addr);
        } else if (addr == PHSM_REG_SQ_TAIL_DB) {
            phsm_write_sq_tail(s, v);
        } else if (addr == PHSM_REG_CQ_HEAD_DB) {
            phsm_write_cq_head(s, v);
        } else {
            phsm_write_abort(s, v);
        }
        return;
    default:
        /* Read-only. */
        phsm_error(s, PHSM_ERR_REG_ACCESS, addr | size << 16);
        return;
    }
}

static const MemoryRegionOps phsm_mmio_ops = {
    .read = phsm_mmio_read,
    .write = phsm_mmio_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    /* Every size reaches the handlers, which refuse all but 32 bits. */
    .valid = { .min_access_size = 1, .max_access_size = 8 },
    .impl = { .min_access_size = 1, .max_access_size = 8 },
};

/* ---- the firmware connection: receiving ------------------------------ */

static void phsm_rx_reset(PhsmState *s)
{
    g_free(s->rx_buf);
    s->rx_buf = NULL;
    s->rx_len = 0;
    s->rx_have = 0;
}

static int phsm_chr_can_read(void *opaque)
{
    PhsmState *s = opaque;

    if (!s->rx_buf) {
        return PHSM_HDR_LEN - s->rx_have;
    }
    return MIN(s->rx_len - s->rx_have, 1u << 20);
}

/* The firmware broke the protocol: drop the connection, as if it died. */
static void phsm_fw_broken(PhsmState *s, const char *why)
{
    error_report("phsm: %s; dropping the firmware connection", why);
    phsm_rx_reset(s);
    qemu_chr_fe_disconnect(&s->chr);
}

static void phsm_rx_header(PhsmState *s)
{
    uint32_t len = ldl_le_p(s->rx_hdr + HDR_OFF(length));

    if (ldl_le_p(s->rx_hdr + HDR_OFF(magic)) != PHSM_PROTO_MAGIC ||
        !(ldl_le_p(s->rx_hdr + HDR_OFF(flags)) & PHSM_MSG_F_RESPONSE) ||
        len < PHSM_HDR_LEN || len > PHSM_MSG_MAX) {
        phsm_fw_broken(s, "malformed answer from the firmware");
        return;
    }
    s->rx_buf = g_try_malloc(len);
    if (!s->rx_buf) {
        phsm_fw_broken(s, "out of memory for an answer");
        return;
    }
    memcpy(s->rx_buf, s->rx_hdr, PHSM_HDR_LEN);
    s->rx_len = len;
}

static void phsm_rx_complete(PhsmState *s)
{
    PhsmRx *rx = g_new0(PhsmRx, 1);

    rx->buf = s->rx_buf;
    rx->len = s->rx_len;
    QSIMPLEQ_INSERT_TAIL(&s->rxq, rx, link);
    s->rx_buf = NULL;
    s->rx_len = 0;
    s->rx_have = 0;
    phsm_kick(s);
}

static void phsm_chr_read(void *opaque, const uint8_t *buf, int size)
{
    PhsmState *s = opaque;

    while (size > 0) {
        uint32_t n;

        if (!s->rx_buf) {
            n = MIN((uint32_t)size, PHSM_HDR_LEN - s->rx_have);
            memcpy(s->rx_hdr + s->rx_have, buf, n);
            s->rx_have += n;
            if (s->rx_have == PHSM_HDR_LEN) {
                phsm_rx_header(s);
                if (!s->rx_buf) {
                    return;
                }
            }
        } else {
            n = MIN((uint32_t)size, s->rx_len - s->rx_have);
            memcpy(s->rx_buf + s->rx_have, buf, n);
            s->rx_have += n;
        }
        if (s->rx_buf && s->rx_have == s->rx_len) {
            phsm_rx_complete(s);
        }
        buf += n;
        size -= n;
    }
}

static void phsm_fw_lost(PhsmState *s)
{
    PhsmTx *tx, *next;

    s->fw_connected = false;
    if (s->watch) {
        g_source_remove(s->watch);
        s->watch = 0;
    }
    phsm_rx_reset(s);
    QTAILQ_FOREACH_SAFE(tx, &s->txq, link, next) {
        phsm_tx_free(s, tx);
    }
    /* The commands in the firmware are lost with it. */
    if (s->cc & PHSM_CC_EN) {
        phsm_error(s, PHSM_ERR_FATAL_FIRMWARE, 0);
    }
}

static void phsm_chr_event(void *opaque, QEMUChrEvent event)
{
    PhsmState *s = opaque;

    switch (event) {
    case CHR_EVENT_OPENED:
        if (!s->fw_connected) {
            s->fw_connected = true;
            s->fw_epoch++;
            phsm_rx_reset(s);
        }
        break;
    case CHR_EVENT_CLOSED:
        if (s->fw_connected) {
            phsm_fw_lost(s);
        }
        break;
    default:
        break;
    }
}

/* ---- knobs ----------------------------------------------------------- */

static bool phsm_get_stall(Object *obj, Error **errp)
{
    return PHSM(obj)->stall;
}

static void phsm_set_stall(Object *obj, bool value, Error **errp)
{
    PhsmState *s = PHSM(obj);

    s->stall = value;
    if (!value && s->bh) {
        phsm_kick(s);
    }
}

static bool phsm_get_removed(Object *obj, Error **errp)
{
    return PHSM(obj)->removed;
}

static void phsm_set_removed(Object *obj, bool value, Error **errp)
{
    PhsmState *s = PHSM(obj);

    s->removed = value;
    if (s->bh) {
        phsm_update_intx(s);
        if (!value) {
            phsm_kick(s);
        }
    }
}

/* ---- PCI ------------------------------------------------------------- */

static uint32_t phsm_config_read(PCIDevice *pdev, uint32_t addr, int len)
{
    if (PHSM(pdev)->removed) {
        return len == 4 ? UINT32_MAX : MAKE_64BIT_MASK(0, len * 8);
    }
    return pci_default_read_config(pdev, addr, len);
}

static void phsm_config_write(PCIDevice *pdev, uint32_t addr, uint32_t val,
                              int len)
{
    if (PHSM(pdev)->removed) {
        return;
    }
    pci_default_write_config(pdev, addr, val, len);
    pcie_cap_flr_write_config(pdev, addr, val, len);
    phsm_update_intx(PHSM(pdev));
}

/* PCIe Device Serial Number: the serial as hex if it is, else its hash. */
static uint64_t phsm_dsn(const char *serial)
{
    uint64_t v = 0xcbf29ce484222325ull;
    const char *p;

    if (*serial && strlen(serial) <= 16 &&
        strspn(serial, "0123456789abcdefABCDEF") == strlen(serial)) {
        return g_ascii_strtoull(serial, NULL, 16);
    }
    for (p = serial; *p; p++) {
        v = (v ^ (uint8_t)*p) * 0x100000001b3ull;
    }
    return v;
}

/*
 * A client socket without reconnect-ms that is down (a card unplugged
 * before on this chardev ended the connection) is connected again here,
 * so that a card plugged in again finds its firmware.  Other chardevs
 * connect on their own; waiting for them could block forever.
 */
static void phsm_chr_reconnect(PhsmState *s)
{
    Chardev *chr = qemu_chr_fe_get_driver(&s->chr);
    SocketChardev *sock;
    Error *err = NULL;

    if (!object_dynamic_cast(OBJECT(chr), TYPE_CHARDEV_SOCKET)) {
        return;
    }
    sock = SOCKET_CHARDEV(chr);
    if (sock->is_listen || sock->reconnect_time_ms ||
        sock->state != TCP_CHARDEV_STATE_DISCONNECTED) {
        return;
    }
    if (qemu_chr_fe_wait_connected(&s->chr, &err) < 0) {
        warn_report_err(err);   /* enabling the card will say so */
    }
}

static void phsm_realize(PCIDevice *pdev, Error **errp)
{
    PhsmState *s = PHSM(pdev);
    Error *err = NULL;
    int ret;

    if (!qemu_chr_fe_backend_connected(&s->chr)) {
        error_setg(errp, "phsm: 'chardev' is required (the firmware socket)");
        return;
    }
    pci_config_set_interrupt_pin(pdev->config, 1);
    pcie_endpoint_cap_init(pdev, 0x80);
    pcie_cap_flr_init(pdev);
    if (s->serial) {
        pcie_dev_ser_num_init(pdev, 0x100, phsm_dsn(s->serial));
    }

    memory_region_init_io(&s->mmio, OBJECT(s), &phsm_mmio_ops, s,
                          "phsm-regs", PHSM_BAR0_SIZE);
    pci_register_bar(pdev, PHSM_BAR_REGS, PCI_BASE_ADDRESS_SPACE_MEMORY,
                     &s->mmio);

    ret = msix_init_exclusive_bar(pdev, PHSM_MSIX_VECS, PHSM_BAR_MSIX, &err);
    if (ret == -ENOTSUP) {
        warn_report_err(err);   /* MSI or INTx then */
        err = NULL;
    } else if (ret) {
        error_propagate(errp, err);
        return;
    } else {
        msix_vector_use(pdev, PHSM_MSIX_VEC_CQ);
        msix_vector_use(pdev, PHSM_MSIX_VEC_ERR);
    }
    ret = msi_init(pdev, 0, 1, true, false, &err);
    if (ret && ret != -ENOTSUP) {
        error_propagate(errp, err);
        if (msix_present(pdev)) {
            msix_uninit_exclusive_bar(pdev);
        }
        return;
    }
    error_free(err);

    s->ctxs = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
                                    g_free);
    QTAILQ_INIT(&s->done);
    QTAILQ_INIT(&s->txq);
    QSIMPLEQ_INIT(&s->rxq);
    for (unsigned int i = 0; i < PHSM_MQES; i++) {
        s->cmds[i].slot = i;
        s->cmds[i].state = CMD_FREE;
        s->free_slots[i] = i;
    }
    s->nfree = PHSM_MQES;
    s->bh = qemu_bh_new_guarded(phsm_bh, s,
                                &DEVICE(pdev)->mem_reentrancy_guard);
    phsm_reset(s, true);
    phsm_chr_reconnect(s);
    qemu_chr_fe_set_handlers(&s->chr, phsm_chr_can_read, phsm_chr_read,
                             phsm_chr_event, NULL, s, NULL, true);
}

static void phsm_exit(PCIDevice *pdev)
{
    PhsmState *s = PHSM(pdev);
    PhsmTx *tx, *next;

    phsm_forget_all(s);
    /*
     * Ending the bridge connection closes every context at the firmware,
     * including those whose closing messages could not be written yet.
     */
    if (s->watch) {
        g_source_remove(s->watch);
        s->watch = 0;
    }
    qemu_chr_fe_set_handlers(&s->chr, NULL, NULL, NULL, NULL, NULL, NULL,
                             true);
    qemu_chr_fe_disconnect(&s->chr);
    qemu_chr_fe_deinit(&s->chr, false);
    QTAILQ_FOREACH_SAFE(tx, &s->txq, link, next) {
        phsm_tx_free(s, tx);
    }
    phsm_rx_reset(s);
    qemu_bh_delete(s->bh);
    s->bh = NULL;
    g_hash_table_destroy(s->ctxs);
    msi_uninit(pdev);
    if (msix_present(pdev)) {
        msix_uninit_exclusive_bar(pdev);
    }
}

/* Device (and function level) reset: back to power-on state. */
static void phsm_device_reset(DeviceState *dev)
{
    PhsmState *s = PHSM(dev);

    if (s->bh) {
        phsm_reset(s, true);
    }
}

static const Property phsm_props[] = {
    DEFINE_PROP_CHR("chardev", PhsmState, chr),
    DEFINE_PROP_STRING("serial", PhsmState, serial),
};

static const VMStateDescription phsm_vmstate = {
    .name = TYPE_PHSM,
    .unmigratable = 1,
};

static void phsm_class_init(ObjectClass *oc, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(oc);
    PCIDeviceClass *pc = PCI_DEVICE_CLASS(oc);

    pc->realize = phsm_realize;
    pc->exit = phsm_exit;
    pc->config_read = phsm_config_read;
    pc->config_write = phsm_config_write;
    pc->vendor_id = PHSM_PCI_VENDOR_ID;
    pc->device_id = PHSM_PCI_DEVICE_ID;
    pc->revision = PHSM_PCI_REVISION;
    pc->class_id = PHSM_PCI_CLASS >> 8;
    dc->desc = "phsm HSM card (firmware behind a chardev)";
    dc->vmsd = &phsm_vmstate;
    device_class_set_props(dc, phsm_props);
    device_class_set_legacy_reset(dc, phsm_device_reset);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);

    object_class_property_add_bool(oc, "stall", phsm_get_stall,
                                   phsm_set_stall);
    object_class_property_set_description(oc, "stall",
        "stop fetching and completing commands (a reset clears it)");
    object_class_property_add_bool(oc, "surprise-removed", phsm_get_removed,
                                   phsm_set_removed);
    object_class_property_set_description(oc, "surprise-removed",
        "act as a card pulled out: reads all ones, no DMA, no interrupts");
}

static const TypeInfo phsm_info = {
    .name = TYPE_PHSM,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(PhsmState),
    .class_init = phsm_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_PCIE_DEVICE },
        { }
    },
};

static void phsm_register_types(void)
{
    type_register_static(&phsm_info);
}

type_init(phsm_register_types)
