#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Attack phsm-fw's shared-memory channels (uapi/phsm_shm.h).

Bad SHM_ATTACH requests (no descriptor, two, a pipe, an unsealed memfd, a
bad channel header, a payload) get the precise PHSM_ST_* status; a good
one attaches.  Then the client writes garbage into its own rings: bad SQ
entries get the precise CQE status, doorbells beyond the ring are ignored,
scribbled data gets protocol errors, a response that does not fit gets
RESP_OVERFLOW.  Two channels of one connection run in parallel.  A client
process killed in the middle of a request, and one killed while the
daemon sleeps on its channel, leave the daemon serving others.  At the end
the daemon must still answer on a new connection.

Usage: shm_malformed.py SOCKET
Prints one "PASS: name" or "FAIL: name: why" line per check and exits
non-zero if any check failed.
"""

import ctypes
import fcntl
import mmap
import os
import platform
import random
import signal
import socket
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import malformed as M  # noqa: E402  (the protocol helpers)

SHM_H = os.path.join(HERE, "..", "..", "uapi", "phsm_shm.h")
DEV_H = os.path.join(HERE, "..", "..", "uapi", "phsm_dev.h")
S = M.load_constants(SHM_H)
S.update(M.load_constants(DEV_H))
OP_ATTACH = S["PHSM_OP_SHM_ATTACH"]
SQ_OFF, CQ_OFF, DATA_OFF = (S["PHSM_SHM_SQ_OFF"], S["PHSM_SHM_CQ_OFF"],
                            S["PHSM_SHM_DATA_OFF"])
CQE = {k[len("PHSM_CQE_"):]: v for k, v in S.items()
       if k.startswith("PHSM_CQE_") and k != "PHSM_CQE_PHASE"}
CQE_NAME = {v: k for k, v in CQE.items()}
SQE_MSG = S["PHSM_SQE_MSG"]
CHANNELS_MAX = S["PHSM_SHM_CHANNELS_MAX"]
SQE = struct.Struct("<HBBIQQQII24x")
CQE_S = struct.Struct("<IIHHHH")
OFF_SQ_TAIL, OFF_CQ_HEAD, OFF_DEV_WAKE, OFF_DEV_SLEEPING = 64, 128, 192, 196
QDEPTH = 4
SIZE = DATA_OFF + (256 << 10)
CKR_DEVICE_MEMORY = 0x31
TIMEOUT = 30.0

SYS_FUTEX = {"x86_64": 202, "aarch64": 98}.get(platform.machine())
LIBC = ctypes.CDLL(None, use_errno=True)


def memfd(size=SIZE, seal=True, magic=None, qdepth=QDEPTH, hsize=None,
          version=1):
    fd = os.memfd_create("shm-test", os.MFD_ALLOW_SEALING | os.MFD_CLOEXEC)
    os.ftruncate(fd, size)
    hdr = struct.pack("<IIIIQ", S["PHSM_SHM_MAGIC"] if magic is None
                      else magic, version, qdepth, 0,
                      size if hsize is None else hsize)
    os.pwrite(fd, hdr, 0)
    if seal:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK |
                    fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    return fd


def attach_raw(conn, fds, payload=b"", tag=9):
    """Send SHM_ATTACH with these descriptors; the answer's header."""
    msg = M.message(OP_ATTACH, payload, tag=tag)
    if fds:
        socket.send_fds(conn.s, [msg], fds)
    else:
        conn.send(msg)
    hdr, _ = conn.recv_msg()
    M.expect_status(hdr, hdr["status"], tag=tag, opcode=OP_ATTACH)
    return hdr


class Channel:
    """A client's side of one channel, written as a hostile client may."""

    def __init__(self, conn, size=SIZE):
        self.conn = conn
        self.size = size
        fd = memfd(size)
        hdr = attach_raw(conn, [fd])
        self.attached = (hdr["status"] == M.ST["OK"] and
                         hdr["rv"] == M.CKR_OK)
        self.rv = hdr["rv"]
        self.mm = mmap.mmap(fd, size)
        os.close(fd)
        self.tail = 0
        self.head = 0
        self.phase = 1
        self.cid = 100

    def u32(self, off, v=None):
        if v is None:
            return struct.unpack_from("<I", self.mm, off)[0]
        struct.pack_into("<I", self.mm, off, v)
        return v

    def ring(self):
        """Wake the daemon if it sleeps (the futex, else its timeout)."""
        if self.u32(OFF_DEV_SLEEPING):
            self.u32(OFF_DEV_WAKE, (self.u32(OFF_DEV_WAKE) + 1) & 0xffffffff)
            if SYS_FUTEX is not None:
                addr = ctypes.addressof(
                    ctypes.c_char.from_buffer(self.mm, OFF_DEV_WAKE))
                LIBC.syscall(SYS_FUTEX, ctypes.c_void_p(addr), 1, 1, None,
                             None, 0)

    def submit(self, entry):
        struct.pack_into("64s", self.mm, SQ_OFF + 64 * self.tail, entry)
        self.tail = (self.tail + 1) % QDEPTH
        self.u32(OFF_SQ_TAIL, self.tail)
        self.ring()

    def reap(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        off = CQ_OFF + 16 * self.head
        while True:
            e = CQE_S.unpack_from(self.mm, off)
            if e[5] & 1 == self.phase:
                break
            assert time.monotonic() < deadline, "no completion"
            time.sleep(0.0002)
        self.head += 1
        if self.head == QDEPTH:
            self.head = 0
            self.phase ^= 1
        self.u32(OFF_CQ_HEAD, self.head)
        resp_len, _, sq_head, _, cid, status = e
        return dict(resp_len=resp_len, sq_head=sq_head, cid=cid,
                    status=status >> 1)

    def entry(self, req_len, cid=None, opcode=SQE_MSG, flags=0, app_ctx=0,
              req_addr=DATA_OFF, resp_addr=DATA_OFF, resp_cap=None,
              reserved=0):
        self.cid = (self.cid + 1) & 0xffff
        return SQE.pack(self.cid if cid is None else cid, opcode, flags,
                        req_len, app_ctx, req_addr, resp_addr,
                        self.size - DATA_OFF if resp_cap is None
                        else resp_cap, reserved)

    def call_raw(self, msg, **kw):
        self.mm[DATA_OFF:DATA_OFF + len(msg)] = msg
        e = self.entry(len(msg), **kw)
        self.submit(e)
        c = self.reap()
        assert c["cid"] == self.cid, "cid %d, want %d" % (c["cid"], self.cid)
        return c

    def call(self, msg):
        """A request that must succeed at the ring level: (hdr, payload)."""
        c = self.call_raw(msg)
        assert c["status"] == CQE["SUCCESS"], "CQE status %s" % (
            CQE_NAME.get(c["status"], c["status"]))
        resp = bytes(self.mm[DATA_OFF:DATA_OFF + c["resp_len"]])
        h = M.HDR.unpack_from(resp)
        hdr = dict(opcode=h[2], length=h[3], flags=h[4], tag=h[6],
                   status=h[7], rv=h[8])
        assert hdr["length"] == c["resp_len"], "length %d, CQE %d" % (
            hdr["length"], c["resp_len"])
        return hdr, resp[M.HDR.size:]

    def nop(self, tag=31):
        hdr, _ = self.call(M.message(M.OP["NOP"], tag=tag))
        M.expect_status(hdr, M.ST["OK"], tag=tag, opcode=M.OP["NOP"])

    def close(self):
        self.mm.close()


def expect_cqe(c, status):
    assert c["status"] == CQE[status], "CQE status %s, want %s" % (
        CQE_NAME.get(c["status"], c["status"]), status)


def expect_attach(status, fds=None, payload=b"", rv=None):
    conn = M.Conn(SOCK)
    try:
        hdr = attach_raw(conn, fds or [], payload)
        M.expect_status(hdr, M.ST[status])
        if rv is not None:
            assert hdr["rv"] == rv, "rv %#x, want %#x" % (hdr["rv"], rv)
        M.nop_works(conn)
    finally:
        conn.close()
        for fd in fds or []:
            os.close(fd)


def keypair_request(sess, tag):
    false = b"\0"
    pub = M.attrs([(0x1, M.ATTR_F_VALUE, 1, false),
                   (0x121, M.ATTR_F_VALUE, 8, struct.pack("<Q", 4096))])
    priv = M.attrs([(0x1, M.ATTR_F_VALUE, 1, false),
                    (0x2, M.ATTR_F_VALUE, 1, false)])
    return M.message(M.OP["GENERATE_KEY_PAIR"],
                     M.u64(sess) + M.mech(0) + pub + priv, tag=tag)


def open_session(conn):
    """A read-write session on partition 1 (initialised if need be)."""
    conn.send(M.message(M.OP["OPEN_SESSION"], M.u64(1) + M.u64(0x6), tag=2))
    hdr, reply = conn.recv_msg()
    if hdr["rv"] != M.CKR_OK:
        M.call(conn, M.OP["INIT_TOKEN"], M.u64(1) +
               M.bytes_field(b"12345678") + M.bytes_field(b"shm".ljust(32)),
               tag=1)
        reply = M.call(conn, M.OP["OPEN_SESSION"], M.u64(1) + M.u64(0x6),
                       tag=2)
    return struct.unpack_from("<Q", reply, 8)[0]


def run_checks():
    check = M.check

    @check("SHM_ATTACH without a descriptor: BAD_VALUE")
    def _():
        expect_attach("BAD_VALUE")

    @check("SHM_ATTACH with two descriptors: BAD_VALUE")
    def _():
        expect_attach("BAD_VALUE", [memfd(), memfd()])

    @check("SHM_ATTACH with a pipe: BAD_VALUE")
    def _():
        r, w = os.pipe()
        os.close(w)
        expect_attach("BAD_VALUE", [r])

    @check("SHM_ATTACH with an unsealed memfd: BAD_VALUE")
    def _():
        expect_attach("BAD_VALUE", [memfd(seal=False)])

    @check("SHM_ATTACH with a memfd too small: BAD_VALUE")
    def _():
        expect_attach("BAD_VALUE", [memfd(size=DATA_OFF + 4096)])

    @check("SHM_ATTACH with bad magic, version, depth, size: BAD_VALUE")
    def _():
        for kw in (dict(magic=0x1234), dict(version=9), dict(qdepth=3),
                   dict(qdepth=1), dict(qdepth=128), dict(hsize=SIZE * 2)):
            expect_attach("BAD_VALUE", [memfd(**kw)])

    @check("SHM_ATTACH with a payload: TRAILING")
    def _():
        expect_attach("TRAILING", [memfd()], payload=M.u64(1))

    @check("a descriptor sent with another request is dropped")
    def _():
        conn = M.Conn(SOCK)
        try:
            fd = memfd()
            socket.send_fds(conn.s, [M.message(M.OP["NOP"], tag=5)], [fd])
            os.close(fd)
            hdr, _ = conn.recv_msg()
            M.expect_status(hdr, M.ST["OK"], tag=5, opcode=M.OP["NOP"])
        finally:
            conn.close()

    conn = M.Conn(SOCK)
    ch = Channel(conn)

    @check("a good SHM_ATTACH attaches; NOP over the ring")
    def _():
        assert ch.attached, "attach rv %#x" % ch.rv
        ch.nop()

    @check("bad SQ entries get the precise CQE status")
    def _():
        nop = M.message(M.OP["NOP"], tag=3)
        n = len(nop)
        ch.mm[DATA_OFF:DATA_OFF + n] = nop
        for kw, st in ((dict(opcode=0x7f), "INVALID_OPCODE"),
                       (dict(opcode=2), "INVALID_OPCODE"),
                       (dict(flags=1), "INVALID_FIELD"),
                       (dict(reserved=1), "INVALID_FIELD"),
                       (dict(app_ctx=5), "BAD_CONTEXT"),
                       (dict(req_addr=0), "INVALID_FIELD"),
                       (dict(req_addr=SQ_OFF), "INVALID_FIELD"),
                       (dict(req_addr=SIZE - 8), "INVALID_FIELD"),
                       (dict(req_addr=(1 << 64) - 8), "INVALID_FIELD"),
                       (dict(resp_addr=SIZE), "INVALID_FIELD"),
                       (dict(resp_cap=SIZE), "INVALID_FIELD"),
                       (dict(resp_cap=8), "INVALID_LENGTH")):
            ch.submit(ch.entry(n, **kw))
            c = ch.reap()
            assert c["cid"] == ch.cid, "cid %d" % c["cid"]
            expect_cqe(c, st)
        for bad_len in (0, 39, 0xffffffff):
            ch.submit(ch.entry(bad_len))
            expect_cqe(ch.reap(), "INVALID_LENGTH")
        ch.nop()

    @check("a response larger than resp_cap: RESP_OVERFLOW with its size")
    def _():
        msg = M.message(M.OP["GET_CARD_INFO"], tag=4)
        c = ch.call_raw(msg, resp_cap=48)
        expect_cqe(c, "RESP_OVERFLOW")
        assert c["resp_len"] == 40 + 8 + M.CARD_INFO_LEN, \
            "resp_len %d" % c["resp_len"]
        ch.nop()

    @check("scribbled requests get protocol errors over the ring")
    def _():
        rng = random.Random(7)
        for i in range(50):
            body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 200)))
            msg = M.message(rng.choice(list(M.OP.values())), body,
                            tag=600 + i)
            if i % 3 == 0:
                msg = bytes(rng.getrandbits(8) for _ in range(len(msg)))
            c = ch.call_raw(msg)
            expect_cqe(c, "SUCCESS")
            h = M.HDR.unpack_from(ch.mm, DATA_OFF)
            assert h[4] & M.F_RESPONSE, "no response flag"
        ch.nop()

    @check("doorbells beyond the ring are ignored, the channel goes on")
    def _():
        ch.u32(OFF_SQ_TAIL, 0xdeadbeef)
        ch.ring()
        time.sleep(0.05)
        ch.u32(OFF_CQ_HEAD, 77)
        ch.u32(OFF_SQ_TAIL, ch.tail)
        time.sleep(0.05)
        ch.u32(OFF_CQ_HEAD, ch.head)
        ch.nop()

    @check("a scribbled header after attach changes nothing")
    def _():
        ch.mm[0:64] = os.urandom(64)
        ch.nop()

    @check("two channels of one connection run in parallel")
    def _():
        sess = open_session(conn)
        ch2 = Channel(conn)
        try:
            assert ch2.attached, "second attach rv %#x" % ch2.rv
            msg = keypair_request(sess, 70)
            ch.mm[DATA_OFF:DATA_OFF + len(msg)] = msg
            ch.submit(ch.entry(len(msg)))
            ch2.nop(tag=71)
            c = ch.reap(timeout=120)
            expect_cqe(c, "SUCCESS")
            h = M.HDR.unpack_from(ch.mm, DATA_OFF)
            assert h[8] == M.CKR_OK, "key pair rv %#x" % h[8]
        finally:
            ch2.close()

    @check("at most PHSM_SHM_CHANNELS_MAX channels per connection")
    def _():
        other = M.Conn(SOCK)
        chans = []
        try:
            for _ in range(CHANNELS_MAX):
                c = Channel(other, size=DATA_OFF + (64 << 10))
                chans.append(c)
                assert c.attached, "attach %d rv %#x" % (len(chans), c.rv)
            extra = Channel(other, size=DATA_OFF + (64 << 10))
            chans.append(extra)
            assert not extra.attached and extra.rv == CKR_DEVICE_MEMORY, \
                "channel %d: rv %#x" % (len(chans), extra.rv)
            chans[0].nop()
        finally:
            for c in chans:
                c.close()
            other.close()

    ch.close()
    conn.close()

    @check("a client killed in the middle of a request")
    def _():
        killed_client(mid_request=True)

    @check("a client killed while the daemon sleeps on its channel")
    def _():
        killed_client(mid_request=False)

    @check("daemon still serves a new connection and channel")
    def _():
        c2 = M.Conn(SOCK)
        try:
            ch3 = Channel(c2)
            assert ch3.attached, "attach rv %#x" % ch3.rv
            ch3.nop()
            ch3.close()
            M.card_info_works()
        finally:
            c2.close()


def killed_client(mid_request):
    """A child attaches a channel, starts a slow request (or nothing) and
    is SIGKILLed; meanwhile and afterwards others are served."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            conn = M.Conn(SOCK)
            ch = Channel(conn)
            if mid_request:
                sess = open_session(conn)
                msg = keypair_request(sess, 80)
                ch.mm[DATA_OFF:DATA_OFF + len(msg)] = msg
                ch.submit(ch.entry(len(msg)))
            else:
                ch.nop()
            os.write(w, b"1")
            time.sleep(60)
        finally:
            os._exit(0)
    os.close(w)
    try:
        assert os.read(r, 1) == b"1", "child did not get going"
        time.sleep(0.3)
        other = M.Conn(SOCK)
        try:
            ch = Channel(other)
            assert ch.attached, "attach rv %#x" % ch.rv
            ch.nop()
            ch.close()
        finally:
            other.close()
    finally:
        os.close(r)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    time.sleep(0.2)
    M.card_info_works()


def main():
    global SOCK
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    SOCK = sys.argv[1]
    M.SOCK = SOCK
    run_checks()
    passed = sum(M.results)
    failed = len(M.results) - passed
    print("summary: %d of %d checks passed" % (passed, passed + failed))
    return 1 if failed else 0


SOCK = None

if __name__ == "__main__":
    sys.exit(main())
