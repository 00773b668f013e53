#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Device-level tests of the QEMU phsm device, without a guest driver.

QEMU runs with the qtest accelerator: no guest CPU, and this script plays
the driver through the qtest protocol (port I/O for PCI configuration,
MMIO for the registers, guest memory for the rings and buffers).  Behind
the device runs a real phsm-fw in bridge mode.  MSI-X vectors point into
guest RAM, so an interrupt is a memory write the test can see.

    tests/qemu/phsm_qtest.py --qemu QEMU --fw PHSM_FW [-k NAME]

Prints one line per test and "qemu: N passed, N failed"; exit status 0
only if all passed.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# ---- uapi constants (uapi/phsm_dev.h, uapi/phsm_proto.h) -------------------

VENDOR, DEVICE = 0x1AF4, 0x10F0
REG_ID, REG_VERSION, REG_CAP, REG_MAX_MSG = 0x000, 0x004, 0x008, 0x00C
REG_MAX_CTX, REG_PROTO, REG_CC, REG_CSTS = 0x010, 0x014, 0x018, 0x01C
REG_INTMS, REG_INTMC, REG_ISR, REG_ERR_CODE = 0x020, 0x024, 0x028, 0x02C
REG_ERR_INFO, REG_ERR_COUNT, REG_QDEPTH, REG_MAX_SGE = 0x030, 0x034, 0x038, 0x03C
REG_SQ_LO, REG_SQ_HI, REG_CQ_LO, REG_CQ_HI = 0x040, 0x044, 0x048, 0x04C
REG_SQ_TAIL, REG_CQ_HEAD, REG_ABORT = 0x100, 0x104, 0x108
ID_MAGIC = 0x44534850

ERR_REG_ACCESS, ERR_REG_LOCKED, ERR_BAD_VALUE = 0x01, 0x02, 0x03
ERR_QUEUE_CONFIG, ERR_SQ_TAIL, ERR_CQ_HEAD, ERR_NOT_READY = 0x04, 0x05, 0x06, 0x07
ERR_FATAL_FIRMWARE = 0x81

SQE_MSG, SQE_APP_OPEN, SQE_APP_CLOSE = 1, 2, 3
F_REQ_SGL, F_RESP_SGL = 1, 2

CQE_SUCCESS, CQE_INVALID_OPCODE, CQE_INVALID_FIELD = 0x00, 0x01, 0x02
CQE_INVALID_LENGTH, CQE_BAD_CONTEXT, CQE_NO_RESOURCES = 0x03, 0x04, 0x05
CQE_DMA_READ, CQE_DMA_WRITE, CQE_RESP_OVERFLOW = 0x06, 0x07, 0x08
CQE_ABORTED = 0x09

MAGIC = 0x4D534850
OP_GET_CARD_INFO, OP_INIT_TOKEN, OP_OPEN_SESSION = 0x0001, 0x0010, 0x0020
OP_GET_SESSION_INFO, OP_GENERATE_RANDOM, OP_NOP = 0x0023, 0x0071, 0x0081
ST_OK, ST_BAD_MAGIC, ST_BAD_LENGTH, ST_BAD_CONTEXT = 0, 1, 3, 11
FT_U64, FT_BYTES = 1, 2
CKR_OK, CKR_SESSION_HANDLE_INVALID = 0, 0xB3
CKF_RW_SESSION, CKF_SERIAL_SESSION = 2, 4

# ---- guest memory layout -----------------------------------------------------

BAR0 = 0xFE000000
BAR2 = 0xFE001000
SQ_ADDR = 0x100000
CQ_ADDR = 0x110000
MSIX_ADDR = 0x120000      # vector n writes its data at MSIX_ADDR + 4 n
BUF_BASE = 0x200000       # request/response buffers, 64 KiB each
BUF_SIZE = 0x10000
NOWHERE = 0x7F0000000000
ECAM = 0xB0000000  # not backed by anything: DMA there fails


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def eq(got, want, what):
    if got != want:
        raise Fail("%s: got %r, want %r" % (what, got, want))


# ---- messages -----------------------------------------------------------------

def field(ftype, value):
    return struct.pack("<HHI", ftype, 0, len(value)) + value


def u64(v):
    return field(FT_U64, struct.pack("<Q", v))


def bfield(b):
    return field(FT_BYTES, b)


def request(opcode, app_ctx, tag, payload=b""):
    return struct.pack("<IHHIIQIIII", MAGIC, 1, opcode, 40 + len(payload), 0,
                       app_ctx, tag, 0, 0, 0) + payload


def parse_response(b):
    check(len(b) >= 40, "response shorter than a header")
    (magic, ver, op, length, flags, app_ctx, tag, status, rv,
     _res) = struct.unpack_from("<IHHIIQIIII", b)
    eq(magic, MAGIC, "response magic")
    eq(length, len(b), "response length")
    eq(flags, 1, "response flags")
    fields = []
    off = 40
    while off < len(b):
        ftype, _r, flen = struct.unpack_from("<HHI", b, off)
        fields.append((ftype, b[off + 8:off + 8 + flen]))
        off += 8 + flen
    return dict(opcode=op, app_ctx=app_ctx, tag=tag, status=status, rv=rv,
                fields=fields)


# ---- qtest and QMP ------------------------------------------------------------

class Qtest:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def cmd(self, line):
        self.sock.sendall(line.encode() + b"\n")
        while True:
            while b"\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise Fail("qtest connection closed (QEMU died?)")
                self.buf += data
            reply, self.buf = self.buf.split(b"\n", 1)
            reply = reply.decode()
            if reply.startswith("IRQ"):
                continue
            if not reply.startswith("OK"):
                raise Fail("qtest: %s -> %s" % (line, reply))
            return reply[3:]

    def readl(self, addr):
        return int(self.cmd("readl 0x%x" % addr), 16)

    def writel(self, addr, v):
        self.cmd("writel 0x%x 0x%x" % (addr, v))

    def readw(self, addr):
        return int(self.cmd("readw 0x%x" % addr), 16)

    def readb(self, addr):
        return int(self.cmd("readb 0x%x" % addr), 16)

    def readq(self, addr):
        return int(self.cmd("readq 0x%x" % addr), 16)

    def outl(self, port, v):
        self.cmd("outl 0x%x 0x%x" % (port, v))

    def inl(self, port):
        return int(self.cmd("inl 0x%x" % port), 16)

    def read(self, addr, n):
        return bytes.fromhex(self.cmd("read 0x%x 0x%x" % (addr, n))[2:])

    def write(self, addr, data):
        if data:
            self.cmd("write 0x%x 0x%x 0x%s" % (addr, len(data), data.hex()))


class Qmp:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.f = self.sock.makefile("rwb")
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            line = self.f.readline()
            if not line:
                raise Fail("QMP closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}).encode()
                     + b"\n")
        self.f.flush()
        reply = self._read()
        if "error" in reply:
            raise Fail("QMP %s: %s" % (name, reply["error"]))
        return reply.get("return")


# ---- the rig: phsm-fw + QEMU + the card -----------------------------------------

class Rig:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.fw = None
        self.qemu = None
        self.fw_sock = os.path.join(tmp, "bridge.sock")

    def start_fw(self):
        state = os.path.join(self.tmp, "state")
        os.makedirs(state, exist_ok=True)
        self.fw_log = open(os.path.join(self.tmp, "fw.log"), "ab")
        self.fw = subprocess.Popen(
            [self.args.fw, "--state", state, "--bridge", self.fw_sock,
             "--pin-iterations", "1000"],
            stdout=self.fw_log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        for _ in range(300):
            if os.path.exists(self.fw_sock):
                return
            if self.fw.poll() is not None:
                break
            time.sleep(0.05)
        raise Fail("phsm-fw did not start (see %s/fw.log)" % self.tmp)

    def start_qemu(self):
        qt_path = os.path.join(self.tmp, "qtest.sock")
        qmp_path = os.path.join(self.tmp, "qmp.sock")
        lsock = socket.socket(socket.AF_UNIX)
        lsock.bind(qt_path)
        lsock.listen(1)
        self.qemu_log = open(os.path.join(self.tmp, "qemu.log"), "ab")
        self.qemu = subprocess.Popen(
            [self.args.qemu, "-machine", "q35", "-accel", "qtest",
             "-nodefaults", "-display", "none", "-m", "64M",
             "-L", "/usr/share/qemu", "-L", "/usr/share/seabios",
             "-qtest", "unix:" + qt_path, "-qtest-log", "/dev/null",
             "-qmp", "unix:%s,server=on,wait=off" % qmp_path,
             "-D", os.path.join(self.tmp, "guest-errors.log"),
             "-d", "guest_errors",
             "-chardev", "socket,id=fw0,path=%s,reconnect-ms=200"
             % self.fw_sock,
             "-device", "phsm,chardev=fw0,id=card0,addr=04.0,serial=c0ffee"],
            stdout=self.qemu_log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        lsock.settimeout(30)
        conn, _ = lsock.accept()
        lsock.close()
        conn.settimeout(60)
        self.qt = Qtest(conn)
        for _ in range(100):
            if os.path.exists(qmp_path):
                break
            time.sleep(0.05)
        self.qmp = Qmp(qmp_path)

    def stop(self):
        for p in (self.qemu, self.fw):
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


class Card:
    """A minimal driver for one phsm device at 00:04.0."""

    def __init__(self, qt, depth=16):
        self.qt = qt
        self.depth = depth
        self.next_ctx = 1

    # PCI configuration space, mechanism #1.
    def cfg_read(self, reg):
        self.qt.outl(0xCF8, 0x80000000 | (4 << 11) | (reg & 0xFC))
        return self.qt.inl(0xCFC)

    def cfg_write(self, reg, v):
        self.qt.outl(0xCF8, 0x80000000 | (4 << 11) | (reg & 0xFC))
        self.qt.outl(0xCFC, v)

    def enable_ecam(self):
        # q35's PCIEXBAR (MCH register 0x60), as firmware would set it.
        self.qt.outl(0xCF8, 0x80000000 | 0x60)
        self.qt.outl(0xCFC, ECAM | 1)
        self.qt.outl(0xCF8, 0x80000000 | 0x64)
        self.qt.outl(0xCFC, 0)

    def ecam_read(self, reg):
        """Extended configuration space (>= 0x100) through ECAM."""
        return self.qt.readl(ECAM + (4 << 15) + reg)

    def find_cap(self, cap_id):
        pos = self.cfg_read(0x34) & 0xFF
        while pos:
            hdr = self.cfg_read(pos)
            if hdr & 0xFF == cap_id:
                return pos
            pos = (hdr >> 8) & 0xFF
        return 0

    def setup_pci(self):
        eq(self.cfg_read(0), DEVICE << 16 | VENDOR, "vendor/device")
        self.cfg_write(0x10, BAR0)
        self.cfg_write(0x18, BAR2)
        self.cfg_write(0x04, 0x6)  # memory space, bus master
        msix = self.find_cap(0x11)
        check(msix, "no MSI-X capability")
        ctl = self.cfg_read(msix) >> 16
        eq((ctl & 0x7FF) + 1, 2, "MSI-X vectors")
        for v in range(2):
            e = BAR2 + 16 * v
            self.qt.writel(e, MSIX_ADDR + 4 * v)
            self.qt.writel(e + 4, 0)
            self.qt.writel(e + 8, 0)
            self.qt.writel(e + 12, 0)  # unmasked
        self.cfg_write(msix, (ctl | 0x8000) << 16 | (self.cfg_read(msix) & 0xFFFF))
        self.msix_cap = msix

    def reg(self, off):
        return self.qt.readl(BAR0 + off)

    def wreg(self, off, v):
        self.qt.writel(BAR0 + off, v)

    def msix_count(self, vec):
        return struct.unpack("<I", self.qt.read(MSIX_ADDR + 4 * vec, 4))[0]

    def enable(self):
        self.qt.write(CQ_ADDR, bytes(16 * self.depth))
        self.wreg(REG_ERR_CODE, 0)
        self.wreg(REG_QDEPTH, self.depth)
        self.wreg(REG_SQ_LO, SQ_ADDR)
        self.wreg(REG_SQ_HI, 0)
        self.wreg(REG_CQ_LO, CQ_ADDR)
        self.wreg(REG_CQ_HI, 0)
        self.wreg(REG_INTMC, 3)
        self.wreg(REG_CC, 1)
        eq(self.reg(REG_CSTS), 1, "CSTS after enable")
        self.sq_tail = 0
        self.cq_head = 0
        self.phase = 1
        self.next_cid = 1
        self.outstanding = {}

    def disable(self):
        self.wreg(REG_CC, 0)
        eq(self.reg(REG_CSTS) & 1, 0, "CSTS.RDY after reset")

    def ack_errors(self):
        code = self.reg(REG_ERR_CODE)
        info = self.reg(REG_ERR_INFO)
        self.wreg(REG_ERR_CODE, 0)
        return code, info

    # Submission.
    def put_sqe(self, opcode, app_ctx, flags=0, req_len=0, req_addr=0,
                resp_addr=0, resp_cap=0, cid=None, raw=None):
        if cid is None:
            cid = self.next_cid
            self.next_cid = (self.next_cid + 1) & 0xFFFF or 1
        sqe = raw if raw is not None else struct.pack(
            "<HBBIQQQII24x", cid, opcode, flags, req_len, app_ctx, req_addr,
            resp_addr, resp_cap, 0)
        self.qt.write(SQ_ADDR + 64 * self.sq_tail, sqe)
        self.sq_tail = (self.sq_tail + 1) % self.depth
        self.outstanding[cid] = opcode
        return cid

    def ring(self):
        self.wreg(REG_SQ_TAIL, self.sq_tail)

    def poll(self, want, timeout=20.0):
        """Collect @want completions; returns {cid: (status, resp_len)}."""
        got = {}
        order = []
        deadline = time.time() + timeout
        while len(got) < want:
            e = self.qt.read(CQ_ADDR + 16 * self.cq_head, 16)
            resp_len, _r0, sq_head, _r1, cid, st = struct.unpack("<IIHHHH", e)
            if st & 1 != self.phase:
                if time.time() > deadline:
                    raise Fail("timeout: %d of %d completions" %
                               (len(got), want))
                time.sleep(0.002)
                continue
            check(cid in self.outstanding, "completion for unknown cid %d" % cid)
            del self.outstanding[cid]
            got[cid] = (st >> 1, resp_len)
            order.append(cid)
            self.cq_head += 1
            if self.cq_head == self.depth:
                self.cq_head = 0
                self.phase ^= 1
            self.wreg(REG_CQ_HEAD, self.cq_head)
        self.order = order
        return got

    def run(self, *sqe_args, **kw):
        cid = self.put_sqe(*sqe_args, **kw)
        self.ring()
        return self.poll(1)[cid]

    def open_ctx(self):
        ctx = self.next_ctx
        self.next_ctx += 1
        eq(self.run(SQE_APP_OPEN, ctx), (CQE_SUCCESS, 0), "APP_OPEN")
        return ctx

    def close_ctx(self, ctx):
        eq(self.run(SQE_APP_CLOSE, ctx), (CQE_SUCCESS, 0), "APP_CLOSE")

    def msg(self, ctx, req, slot=0, resp_cap=BUF_SIZE, check_ok=True):
        """One request in buffer pair @slot; returns the parsed response."""
        req_addr = BUF_BASE + 2 * slot * BUF_SIZE
        resp_addr = req_addr + BUF_SIZE
        self.qt.write(req_addr, req)
        st, n = self.run(SQE_MSG, ctx, req_len=len(req), req_addr=req_addr,
                         resp_addr=resp_addr, resp_cap=resp_cap)
        if check_ok:
            eq(st, CQE_SUCCESS, "MSG completion status")
        if st != CQE_SUCCESS:
            return st, n
        return parse_response(self.qt.read(resp_addr, n))


# ---- the tests ------------------------------------------------------------------

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def identity_registers(rig, card):
    eq(card.reg(REG_ID), ID_MAGIC, "ID")
    eq(card.reg(REG_VERSION), 1 << 16, "VERSION")
    cap = card.reg(REG_CAP)
    check(cap & 0xFFFF >= 2 and (cap & 0xFFFF) & ((cap & 0xFFFF) - 1) == 0,
          "MQES a power of two")
    check((cap >> 16) & 0xFF >= 1, "CAP.TO >= 1")
    max_msg = card.reg(REG_MAX_MSG)
    check(4096 <= max_msg <= 16 << 20, "MAX_MSG range")
    check(card.reg(REG_MAX_SGE) >= max_msg // 4096 + 1, "MAX_SGE")
    eq(card.reg(REG_PROTO), 1 | 1 << 16, "PROTO")
    check(card.reg(REG_MAX_CTX) >= 2, "MAX_CTX")
    eq(card.reg(REG_INTMS), 3, "interrupts masked after reset")
    eq(card.reg(REG_SQ_TAIL), 0, "write-only register reads 0")
    eq(card.reg(REG_ERR_CODE), 0, "no error from reading WO")
    # PCIe Device Serial Number from serial=c0ffee.
    card.enable_ecam()
    eq(card.ecam_read(0), DEVICE << 16 | VENDOR, "ECAM works")
    eq(card.ecam_read(0x100) & 0xFFFF, 3, "DSN capability id")
    eq(card.ecam_read(0x104), 0xC0FFEE, "DSN low")
    eq(card.ecam_read(0x108), 0, "DSN high")


@test
def bad_register_accesses(rig, card):
    card.ack_errors()
    eq(rig.qt.readb(BAR0 + REG_ID), 0, "byte read")
    eq(card.ack_errors(), (ERR_REG_ACCESS, REG_ID | 1 << 16), "byte read error")
    eq(rig.qt.readl(BAR0 + 0x0A), 0, "misaligned read")
    eq(card.ack_errors()[0], ERR_REG_ACCESS, "misaligned error")
    eq(card.reg(0x800), 0, "unknown offset")
    eq(card.ack_errors(), (ERR_REG_ACCESS, 0x800 | 4 << 16), "unknown offset error")
    card.wreg(REG_ID, 5)
    eq(card.ack_errors()[0], ERR_REG_ACCESS, "write to RO")
    card.wreg(REG_CC, 0x10)
    eq(card.ack_errors(), (ERR_BAD_VALUE, REG_CC), "reserved CC bit")
    card.wreg(REG_SQ_TAIL, 0)
    eq(card.ack_errors(), (ERR_NOT_READY, REG_SQ_TAIL), "doorbell while off")
    # Two errors: the first stays, the count says 2.
    card.wreg(REG_INTMS, 0x100)
    card.wreg(REG_ABORT, 1)
    eq(card.reg(REG_ERR_COUNT), 2, "ERR_COUNT")
    eq(card.ack_errors(), (ERR_BAD_VALUE, REG_INTMS), "first error kept")
    eq(card.reg(REG_ERR_COUNT), 0, "ERR_COUNT after ack")


@test
def queue_config_checked(rig, card):
    card.ack_errors()
    card.wreg(REG_QDEPTH, 12)  # not a power of two
    card.wreg(REG_SQ_LO, SQ_ADDR)
    card.wreg(REG_CQ_LO, CQ_ADDR)
    card.wreg(REG_CC, 1)
    eq(card.reg(REG_CSTS), 0, "not ready with a bad QDEPTH")
    eq(card.ack_errors(), (ERR_QUEUE_CONFIG, REG_QDEPTH), "QUEUE_CONFIG")
    card.wreg(REG_CC, 0)
    card.wreg(REG_QDEPTH, 16)
    card.wreg(REG_SQ_LO, SQ_ADDR + 8)  # misaligned
    card.wreg(REG_CC, 1)
    eq(card.ack_errors(), (ERR_QUEUE_CONFIG, REG_SQ_LO), "misaligned SQ")
    card.wreg(REG_CC, 0)
    card.enable()
    rig.qt.write(MSIX_ADDR + 4, struct.pack("<I", 0xDEADBEEF))
    card.wreg(REG_QDEPTH, 4)
    eq(card.reg(REG_ISR), 2, "ISR.ERR")
    eq(card.msix_count(1), 0, "MSI-X vector 1 message")
    eq(card.ack_errors(), (ERR_REG_LOCKED, REG_QDEPTH), "locked while enabled")
    eq(card.reg(REG_ISR), 0, "ISR after ack")
    eq(card.reg(REG_QDEPTH), 16, "QDEPTH kept")
    card.wreg(REG_SQ_TAIL, 16)
    eq(card.ack_errors(), (ERR_SQ_TAIL, 16), "SQ tail out of range")
    card.wreg(REG_CQ_HEAD, 3)
    eq(card.ack_errors(), (ERR_CQ_HEAD, 3), "CQ head past the posted")
    card.disable()


@test
def card_info_roundtrip(rig, card):
    card.enable()
    ctx = card.open_ctx()
    r = card.msg(ctx, request(OP_GET_CARD_INFO, ctx, 0xABCD1234))
    eq(r["tag"], 0xABCD1234, "host tag given back")
    eq(r["app_ctx"], ctx, "app_ctx")
    eq((r["status"], r["rv"]), (ST_OK, CKR_OK), "status, rv")
    eq(r["fields"][0][0], FT_BYTES, "card info field")
    info = r["fields"][0][1]
    check(len(info) >= 80, "card info size")
    # MSI-X vector 0 fired (a write of data 0 to its address: check the
    # device wrote by poisoning the word first).
    rig.qt.write(MSIX_ADDR, struct.pack("<I", 0xDEADBEEF))
    card.msg(ctx, request(OP_NOP, ctx, 7))
    eq(card.msix_count(0), 0, "MSI-X vector 0 message")
    card.close_ctx(ctx)
    card.disable()


@test
def sessions_and_contexts(rig, card):
    """Real commands; a context's sessions die with it."""
    card.enable()
    a, b = card.open_ctx(), card.open_ctx()
    label = b"qtest".ljust(32)
    r = card.msg(a, request(OP_INIT_TOKEN, a, 1,
                            u64(0) + bfield(b"so-pin-1234") + bfield(label)))
    eq((r["status"], r["rv"]), (ST_OK, CKR_OK), "INIT_TOKEN")
    r = card.msg(a, request(OP_OPEN_SESSION, a, 2,
                            u64(0) + u64(CKF_SERIAL_SESSION | CKF_RW_SESSION)))
    eq((r["status"], r["rv"]), (ST_OK, CKR_OK), "OPEN_SESSION")
    sess = struct.unpack("<Q", r["fields"][0][1])[0]
    r = card.msg(a, request(OP_GENERATE_RANDOM, a, 3, u64(sess) + u64(32)))
    eq((r["status"], r["rv"]), (ST_OK, CKR_OK), "GENERATE_RANDOM")
    eq(len(r["fields"][0][1]), 32, "random bytes")
    r = card.msg(b, request(OP_GET_SESSION_INFO, b, 4, u64(sess)))
    eq(r["rv"], CKR_SESSION_HANDLE_INVALID, "other context's session")
    card.close_ctx(a)
    r = card.msg(b, request(OP_GET_SESSION_INFO, b, 5, u64(sess)))
    eq(r["rv"], CKR_SESSION_HANDLE_INVALID, "session after close")
    eq(card.run(SQE_MSG, a, req_len=40, req_addr=BUF_BASE,
                resp_addr=BUF_BASE + BUF_SIZE, resp_cap=64),
       (CQE_BAD_CONTEXT, 0), "MSG on a closed context")
    card.close_ctx(b)
    card.disable()


@test
def bad_entries(rig, card):
    card.enable()
    ctx = card.open_ctx()
    req = request(OP_NOP, ctx, 9)
    rig.qt.write(BUF_BASE, req)
    good = dict(req_len=40, req_addr=BUF_BASE, resp_addr=BUF_BASE + BUF_SIZE,
                resp_cap=64)
    eq(card.run(0x7F, ctx)[0], CQE_INVALID_OPCODE, "unknown opcode")
    eq(card.run(SQE_MSG, ctx, flags=0x80, **good)[0], CQE_INVALID_FIELD,
       "unknown flag")
    eq(card.run(SQE_APP_OPEN, 99, flags=1)[0], CQE_INVALID_FIELD,
       "flag on APP_OPEN")
    raw = bytearray(struct.pack("<HBBIQQQII24x", 0x77, SQE_MSG, 0, 40, ctx,
                                BUF_BASE, BUF_BASE + BUF_SIZE, 64, 0))
    raw[40] = 1
    eq(card.run(SQE_MSG, ctx, cid=0x77, raw=bytes(raw))[0], CQE_INVALID_FIELD,
       "reserved1")
    eq(card.run(SQE_MSG, ctx, req_len=39, req_addr=BUF_BASE,
                resp_addr=BUF_BASE + BUF_SIZE, resp_cap=64)[0],
       CQE_INVALID_LENGTH, "short request")
    eq(card.run(SQE_MSG, ctx, req_len=(16 << 20) + 1, req_addr=BUF_BASE,
                resp_addr=BUF_BASE + BUF_SIZE, resp_cap=64)[0],
       CQE_INVALID_LENGTH, "huge request")
    eq(card.run(SQE_MSG, ctx, req_len=40, req_addr=BUF_BASE,
                resp_addr=BUF_BASE + BUF_SIZE, resp_cap=39)[0],
       CQE_INVALID_LENGTH, "small resp_cap")
    eq(card.run(SQE_MSG, ctx, req_len=40, req_addr=0,
                resp_addr=BUF_BASE + BUF_SIZE, resp_cap=64)[0],
       CQE_INVALID_FIELD, "zero address")
    eq(card.run(SQE_MSG, ctx, req_len=40, req_addr=0xFFFFFFFFFFFFFFF0,
                resp_addr=BUF_BASE + BUF_SIZE, resp_cap=64)[0],
       CQE_INVALID_FIELD, "wrapping address")
    eq(card.run(SQE_MSG, 0, **good)[0], CQE_BAD_CONTEXT, "context 0")
    eq(card.run(SQE_MSG, 4242, **good)[0], CQE_BAD_CONTEXT, "unknown context")
    eq(card.run(SQE_APP_OPEN, ctx)[0], CQE_BAD_CONTEXT, "open twice")
    eq(card.run(SQE_APP_CLOSE, 4242)[0], CQE_BAD_CONTEXT, "close unknown")
    eq(card.run(SQE_MSG, ctx, req_len=40, req_addr=NOWHERE,
                resp_addr=BUF_BASE + BUF_SIZE, resp_cap=64)[0],
       CQE_DMA_READ, "unreadable request")
    eq(card.run(SQE_MSG, ctx, req_len=40, req_addr=BUF_BASE,
                resp_addr=NOWHERE, resp_cap=64)[0],
       CQE_DMA_WRITE, "unwritable response")
    eq(card.run(SQE_MSG, ctx, req_len=40, req_addr=BUF_BASE,
                resp_addr=BUF_BASE + BUF_SIZE, resp_cap=40)[0],
       CQE_SUCCESS, "NOP fits 40")
    # Header problems are answered by the device itself.
    r = card.msg(ctx, request(OP_NOP, ctx + 1000, 10))
    eq((r["status"], r["tag"]), (ST_BAD_CONTEXT, 10), "app_ctx mismatch")
    bad = bytearray(request(OP_NOP, ctx, 11))
    bad[0] ^= 0xFF
    eq(card.msg(ctx, bytes(bad))["status"], ST_BAD_MAGIC, "bad magic")
    r = card.msg(ctx, request(OP_NOP, ctx, 12) + b"\0" * 8)
    eq(r["status"], ST_BAD_LENGTH, "header length != req_len")
    # Still serving.
    eq(card.msg(ctx, request(OP_NOP, ctx, 13))["status"], ST_OK, "still alive")
    eq(card.reg(REG_CSTS), 1, "no fatal status")
    card.close_ctx(ctx)
    card.disable()


@test
def overflow_and_sgl(rig, card):
    card.enable()
    ctx = card.open_ctx()
    rig.qt.write(BUF_BASE, request(OP_GET_CARD_INFO, ctx, 20))
    st, need = card.run(SQE_MSG, ctx, req_len=40, req_addr=BUF_BASE,
                        resp_addr=BUF_BASE + BUF_SIZE, resp_cap=48)
    eq(st, CQE_RESP_OVERFLOW, "overflow status")
    check(need > 48, "overflow says the size needed")
    # The same request through SG lists: request in 3 pieces, response
    # in segments of 7 bytes.
    req = request(OP_GET_CARD_INFO, ctx, 21)
    pieces = [(0x300000, req[:5]), (0x300100, req[5:30]), (0x300200, req[30:])]
    sgl = b""
    for addr, data in pieces:
        rig.qt.write(addr, data)
        sgl += struct.pack("<QII", addr, len(data), 0)
    rig.qt.write(0x301000, sgl)
    rsgl = b""
    for i in range((need + 6) // 7):
        rsgl += struct.pack("<QII", 0x310000 + 16 * i, 7, 0)
    rig.qt.write(0x302000, rsgl)
    st, n = card.run(SQE_MSG, ctx, flags=F_REQ_SGL | F_RESP_SGL,
                     req_len=len(req), req_addr=0x301000,
                     resp_addr=0x302000, resp_cap=need)
    eq((st, n), (CQE_SUCCESS, need), "SGL command")
    resp = b"".join(rig.qt.read(0x310000 + 16 * i, 7)
                    for i in range((need + 6) // 7))[:need]
    r = parse_response(resp)
    eq((r["status"], r["tag"]), (ST_OK, 21), "SGL response")
    # Bad SG lists.
    rig.qt.write(0x303000, struct.pack("<QII", 0x300000, 0, 0))
    eq(card.run(SQE_MSG, ctx, flags=F_REQ_SGL, req_len=40, req_addr=0x303000,
                resp_addr=BUF_BASE + BUF_SIZE, resp_cap=64)[0],
       CQE_INVALID_FIELD, "zero-length segment")
    eq(card.run(SQE_MSG, ctx, flags=F_REQ_SGL, req_len=40, req_addr=0x303008,
                resp_addr=BUF_BASE + BUF_SIZE, resp_cap=64)[0],
       CQE_INVALID_FIELD, "misaligned SG list")
    rig.qt.write(0x303000, struct.pack("<QII", 0x300000, 40, 1))
    eq(card.run(SQE_MSG, ctx, flags=F_REQ_SGL, req_len=40, req_addr=0x303000,
                resp_addr=BUF_BASE + BUF_SIZE, resp_cap=64)[0],
       CQE_INVALID_FIELD, "SG reserved")
    card.close_ctx(ctx)
    card.disable()


@test
def many_in_flight(rig, card):
    """A full ring of commands from three contexts, completed by cid."""
    card.depth = 64
    card.enable()
    ctxs = [card.open_ctx() for _ in range(3)]
    expect = {}
    for i in range(card.depth - 1):
        ctx = ctxs[i % 3]
        req_addr = BUF_BASE + i * 0x1000
        tag = 0x1000 + i
        rig.qt.write(req_addr, request(OP_GET_CARD_INFO, ctx, tag))
        cid = card.put_sqe(SQE_MSG, ctx, req_len=40, req_addr=req_addr,
                           resp_addr=req_addr + 0x800, resp_cap=0x800)
        expect[cid] = (req_addr + 0x800, ctx, tag)
    t0 = time.time()
    card.ring()
    got = card.poll(len(expect))
    dt = time.time() - t0
    for cid, (addr, ctx, tag) in expect.items():
        st, n = got[cid]
        eq(st, CQE_SUCCESS, "cid %d" % cid)
        r = parse_response(rig.qt.read(addr, n))
        eq((r["tag"], r["app_ctx"], r["status"]), (tag, ctx, ST_OK),
           "response of cid %d" % cid)
    print("    %d commands in %.3f s" % (len(expect), dt))
    # Twice round the ring: the phase flips.
    for _ in range(2 * card.depth):
        card.msg(ctxs[0], request(OP_NOP, ctxs[0], 1))
    for c in ctxs:
        card.close_ctx(c)
    card.disable()
    card.depth = 16


@test
def close_waits_for_its_commands(rig, card):
    card.enable()
    ctx = card.open_ctx()
    cids = []
    for i in range(8):
        addr = BUF_BASE + i * 0x1000
        rig.qt.write(addr, request(OP_GET_CARD_INFO, ctx, i))
        cids.append(card.put_sqe(SQE_MSG, ctx, req_len=40, req_addr=addr,
                                 resp_addr=addr + 0x800, resp_cap=0x800))
    close = card.put_sqe(SQE_APP_CLOSE, ctx)
    after = card.put_sqe(SQE_MSG, ctx, req_len=40, req_addr=BUF_BASE,
                         resp_addr=BUF_BASE + 0x800, resp_cap=0x800)
    card.ring()
    got = card.poll(10)
    order = card.order
    check(order.index(close) > max(order.index(c) for c in cids),
          "close completes after the context's commands")
    for c in cids:
        check(got[c][0] in (CQE_SUCCESS, CQE_ABORTED), "cid %d status" % c)
    eq(got[close][0], CQE_SUCCESS, "close status")
    eq(got[after][0], CQE_BAD_CONTEXT, "entry after the close")
    card.disable()


@test
def abort_before_start(rig, card):
    card.enable()
    ctx = card.open_ctx()
    rig.qmp.cmd("qom-set", path="/machine/peripheral/card0", property="stall",
                value=True)
    rig.qt.write(BUF_BASE, request(OP_NOP, ctx, 1))
    cid = card.put_sqe(SQE_MSG, ctx, req_len=40, req_addr=BUF_BASE,
                       resp_addr=BUF_BASE + 0x800, resp_cap=0x800)
    card.ring()
    card.wreg(REG_ABORT, cid)
    card.wreg(REG_ABORT, 0x4321)  # names nothing: ignored
    rig.qmp.cmd("qom-set", path="/machine/peripheral/card0", property="stall",
                value=False)
    eq(card.poll(1)[cid][0], CQE_ABORTED, "aborted")
    eq(card.reg(REG_ERR_CODE), 0, "abort of an unknown cid is no error")
    card.close_ctx(ctx)
    card.disable()


@test
def stall_and_reset(rig, card):
    card.enable()
    ctx = card.open_ctx()
    qom = dict(path="/machine/peripheral/card0", property="stall")
    rig.qmp.cmd("qom-set", value=True, **qom)
    rig.qt.write(BUF_BASE, request(OP_NOP, ctx, 1))
    card.put_sqe(SQE_MSG, ctx, req_len=40, req_addr=BUF_BASE,
                 resp_addr=BUF_BASE + 0x800, resp_cap=0x800)
    card.ring()
    try:
        card.poll(1, timeout=1.0)
        raise Fail("a stalled device completed a command")
    except Fail as e:
        check("timeout" in str(e), str(e))
    card.disable()
    eq(rig.qmp.cmd("qom-get", **qom), False, "reset clears stall")
    card.enable()
    ctx = card.open_ctx()
    eq(card.msg(ctx, request(OP_NOP, ctx, 2))["status"], ST_OK, "after reset")
    card.close_ctx(ctx)
    card.disable()


@test
def surprise_removal(rig, card):
    card.enable()
    ctx = card.open_ctx()
    qom = dict(path="/machine/peripheral/card0", property="surprise-removed")
    rig.qmp.cmd("qom-set", value=True, **qom)
    eq(card.reg(REG_ID), 0xFFFFFFFF, "ID reads all ones")
    eq(card.cfg_read(0), 0xFFFFFFFF, "config space reads all ones")
    rig.qt.write(BUF_BASE, request(OP_NOP, ctx, 1))
    card.put_sqe(SQE_MSG, ctx, req_len=40, req_addr=BUF_BASE,
                 resp_addr=BUF_BASE + 0x800, resp_cap=0x800)
    card.ring()  # dropped
    time.sleep(0.3)
    eq(rig.qt.read(CQ_ADDR + 16 * card.cq_head, 16), bytes(16), "no DMA")
    rig.qmp.cmd("qom-set", value=False, **qom)
    eq(card.reg(REG_ID), ID_MAGIC, "back")
    card.disable()


@test
def function_level_reset(rig, card):
    card.enable()
    card.open_ctx()
    card.wreg(REG_CC, 0x10)  # an error to see cleared
    pcie = card.find_cap(0x10)
    check(pcie, "PCIe capability")
    check(card.cfg_read(pcie + 4) & (1 << 28), "FLR capable")
    ctl = card.cfg_read(pcie + 8)
    card.cfg_write(pcie + 8, ctl | 1 << 15)  # initiate FLR
    card.setup_pci()
    eq(card.reg(REG_CSTS), 0, "not ready after FLR")
    eq(card.reg(REG_QDEPTH), 0, "QDEPTH back to 0")
    eq(card.reg(REG_ERR_CODE), 0, "errors cleared")
    card.enable()
    ctx = card.open_ctx()
    eq(card.msg(ctx, request(OP_NOP, ctx, 2))["status"], ST_OK, "after FLR")
    card.disable()


@test
def firmware_loss_and_reconnect(rig, card):
    card.enable()
    ctx = card.open_ctx()
    rig.fw.send_signal(signal.SIGKILL)
    rig.fw.wait()
    deadline = time.time() + 10
    while not card.reg(REG_CSTS) & 2:
        check(time.time() < deadline, "CSTS.CFS after the firmware died")
        time.sleep(0.05)
    eq(card.reg(REG_ERR_CODE), ERR_FATAL_FIRMWARE, "ERR_CODE")
    card.disable()
    os.unlink(rig.fw_sock)
    rig.start_fw()  # the chardev reconnects (reconnect-ms)
    deadline = time.time() + 10
    while True:
        card.wreg(REG_ERR_CODE, 0)
        card.wreg(REG_CC, 1)
        if card.reg(REG_CSTS) == 1:
            break
        card.wreg(REG_CC, 0)
        check(time.time() < deadline, "enable after the firmware came back")
        time.sleep(0.2)
    card.disable()
    card.enable()
    ctx = card.open_ctx()
    eq(card.msg(ctx, request(OP_NOP, ctx, 3))["status"], ST_OK,
       "after reconnect")
    card.disable()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qemu", required=True)
    ap.add_argument("--fw", required=True)
    ap.add_argument("-k", help="run only tests whose name contains this")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="phsm-qtest.")
    rig = Rig(args, tmp)
    passed = failed = 0
    try:
        rig.start_fw()
        rig.start_qemu()
        card = Card(rig.qt)
        card.setup_pci()
        for fn in TESTS:
            if args.k and args.k not in fn.__name__:
                continue
            try:
                fn(rig, card)
                print("  PASS  qemu/%s" % fn.__name__)
                passed += 1
            except Exception as e:  # noqa: BLE001 - report and go on
                print("  FAIL  qemu/%s: %s" % (fn.__name__, e))
                if not isinstance(e, Fail):
                    traceback.print_exc()
                failed += 1
                # Leave the card in a known state for the next test.
                try:
                    card.wreg(REG_CC, 0)
                    card.depth = 16
                    card.outstanding = {}
                except Exception:  # noqa: BLE001
                    pass
    except Exception as e:  # noqa: BLE001
        print("  FAIL  qemu/setup: %s" % e)
        failed += 1
    finally:
        rig.stop()
        if rig.qemu and rig.qemu.returncode not in (0, -15, None):
            print("  FAIL  qemu/exit: QEMU exit status %s" % rig.qemu.returncode)
            failed += 1
        for name in ("qemu.log", "fw.log"):
            path = os.path.join(tmp, name)
            if failed and os.path.exists(path):
                print("---- %s" % name)
                with open(path, errors="replace") as f:
                    sys.stdout.write(f.read()[-3000:])
        if args.keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("qemu: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
