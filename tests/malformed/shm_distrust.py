#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The library distrusts a daemon's shared-memory channel.

A fake phsm-fw serves SHM_ATTACH and answers GET_CARD_INFO properly, then
answers C_GetMechanismList (GET_MECH_LIST) in one bad way per check: a
completion with another command id, a length beyond the data area, an
error status, RESP_OVERFLOW, a response whose header disagrees with the
completion's length, one with another tag, or no answer at all and the
end of the socket.  The application (PyKCS11 in a child process, with
PHSM_TRANSPORT=shm) must get CKR_DEVICE_ERROR, or CKR_DEVICE_REMOVED for
the daemon's end, and not crash or hang; a good answer must work.

Then C_Encrypt, whose output the library copies straight from the channel
into the caller's buffer (call_run_output): the fake answers OP_ONESHOT
well, with a BYTES length beyond the answer, with an outlen unlike the
BYTES length, and well but then keeps rewriting that length and the
header's in the data area while the library reads it.  The first must
give the data, the next two CKR_DEVICE_ERROR, the last the data or
CKR_DEVICE_ERROR, and never a crash.

Usage: shm_distrust.py LIBRARY
Prints one "PASS: name" or "FAIL: name: why" line per check and exits
non-zero if any check failed.
"""

import ctypes
import mmap
import os
import platform
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import malformed as M  # noqa: E402
import shm_malformed as SM  # noqa: E402

CKR_DEVICE_ERROR = 0x30
CKR_DEVICE_REMOVED = 0x32
OFF_HOST_WAKE, OFF_HOST_SLEEPING = 256, 260
CARD_INFO = (b"phsm".ljust(32) + b"fake".ljust(16) + b"0001".ljust(16) +
             bytes([1, 0, 1, 0]) + struct.pack("<I", 2) + bytes(16))
assert len(CARD_INFO) == M.CARD_INFO_LEN
MODE = {"name": "ok"}
OUT_QUERY = 0xffffffffffffffff
DATA = bytes(range(256)) * 400		# 100 KiB to encrypt
LIBC = ctypes.CDLL(None, use_errno=True)


def response(req, payload=b"", status=0, rv=0, tag=None, length=None):
    h = M.HDR.unpack_from(req)
    return M.message(h[2], payload, tag=h[6] if tag is None else tag,
                     flags=M.F_RESPONSE, status=status, rv=rv, length=length)


def wake_host(mm):
    if struct.unpack_from("<I", mm, OFF_HOST_SLEEPING)[0]:
        w = struct.unpack_from("<I", mm, OFF_HOST_WAKE)[0]
        struct.pack_into("<I", mm, OFF_HOST_WAKE, (w + 1) & 0xffffffff)
        if SM.SYS_FUTEX is not None:
            addr = ctypes.addressof(ctypes.c_char.from_buffer(mm,
                                                              OFF_HOST_WAKE))
            LIBC.syscall(SM.SYS_FUTEX, ctypes.c_void_p(addr), 1, 1, None,
                         None, 0)


def oneshot_answer(req, mode):
    """OP_ONESHOT: the input reversed as "ciphertext", spoilt as @mode says."""
    try:
        fields = M.parse_fields(req[M.HDR.size:])
        data, outcap = fields[2][1][::-1], M.field_u64(fields[4][1])
    except (IndexError, struct.error):
        return response(req, status=M.ST["TRUNCATED"])
    if outcap == OUT_QUERY:
        return response(req, M.bytes_field(b"") + M.u64(len(data)))
    if mode == "out_len":
        return response(req, M.field(M.FT_BYTES, data, length=len(data) + 99)
                        + M.u64(len(data)))
    if mode == "out_mismatch":
        return response(req, M.bytes_field(data) + M.u64(len(data) - 1))
    return response(req, M.bytes_field(data) + M.u64(len(data)))


def scribble(mm, addr, good_hdr, good_len):
    """Rewrite the answer's header length and BYTES length for a while."""
    bad = struct.pack("<I", 0xfffffff0)
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        for h, n in ((bad, good_len), (good_hdr, bad), (good_hdr, good_len)):
            mm[addr + 8:addr + 12] = h
            mm[addr + M.HDR.size + 4:addr + M.HDR.size + 8] = n


def serve_channel(conn, mm, size):
    """The device side of one channel, misbehaving as MODE says."""
    qdepth = struct.unpack_from("<I", mm, 8)[0]
    head = tail = 0
    phase = 1
    while True:
        try:
            t = struct.unpack_from("<I", mm, SM.OFF_SQ_TAIL)[0]
        except ValueError:
            return		# unmapped
        if t == head:
            time.sleep(0.0002)
            continue
        e = SM.SQE.unpack_from(mm, SM.SQ_OFF + 64 * head)
        head = (head + 1) % qdepth
        cid, req_len, req_addr, resp_addr, resp_cap = (e[0], e[3], e[5],
                                                       e[6], e[7])
        req = bytes(mm[req_addr:req_addr + req_len])
        opcode = M.HDR.unpack_from(req)[2]
        mode = MODE["name"] if opcode == M.OP["GET_MECH_LIST"] else "ok"
        if opcode == M.OP["GET_CARD_INFO"]:
            resp = response(req, M.bytes_field(CARD_INFO))
        elif opcode == M.OP["OPEN_SESSION"]:
            resp = response(req, M.u64(1))
        elif opcode == M.OP["OP_ONESHOT"]:
            resp = oneshot_answer(req, MODE["name"])
        elif opcode in (M.OP["OP_INIT"], M.OP["SESSION_CANCEL"],
                        M.OP["CLOSE_SESSION"], M.OP["CLOSE_ALL_SESSIONS"]):
            resp = response(req)
        else:
            resp = response(req, M.field(M.FT_U64_ARRAY,
                                         struct.pack("<Q", 0x1082)))
        status, resp_len = 0, len(resp)
        if mode == "gone":
            conn.shutdown(socket.SHUT_RDWR)
            conn.close()
            return
        if mode == "cid":
            cid = (cid + 1) & 0xffff
        elif mode == "len":
            resp_len = size - SM.DATA_OFF + 1
        elif mode == "status":
            status = SM.CQE["INVALID_FIELD"]
        elif mode == "overflow":
            status = SM.CQE["RESP_OVERFLOW"]
        elif mode == "frame":
            resp = response(req, M.field(M.FT_U64_ARRAY, bytes(8)),
                            length=len(resp) + 8)
        elif mode == "tag":
            resp = response(req, M.field(M.FT_U64_ARRAY, bytes(8)),
                            tag=0x7777)
        mm[resp_addr:resp_addr + len(resp)] = resp
        struct.pack_into("<IIHHH", mm, SM.CQ_OFF + 16 * tail, resp_len, 0,
                         head, 0, cid)
        struct.pack_into("<H", mm, SM.CQ_OFF + 16 * tail + 14,
                         status << 1 | phase)
        tail += 1
        if tail == qdepth:
            tail = 0
            phase ^= 1
        wake_host(mm)
        # Only the last answer of its client (the fake's own next request
        # would be scribbled over too).
        if (opcode == M.OP["OP_ONESHOT"] and MODE["name"] == "out_scribble"
                and len(resp) > 100):
            scribble(mm, resp_addr, resp[8:12],
                     resp[M.HDR.size + 4:M.HDR.size + 8])


def serve_conn(conn):
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(conn, M.HDR.size, 4)
        except OSError:
            return
        if len(msg) < M.HDR.size:
            return
        h = M.HDR.unpack_from(msg)
        if h[3] > M.HDR.size:
            msg += conn.recv(h[3] - M.HDR.size, socket.MSG_WAITALL)
        if h[2] == SM.OP_ATTACH and len(fds) == 1:
            size = os.fstat(fds[0]).st_size
            mm = mmap.mmap(fds[0], size)
            os.close(fds[0])
            threading.Thread(target=serve_channel, args=(conn, mm, size),
                             daemon=True).start()
            conn.sendall(response(msg))
        else:
            for fd in fds:
                os.close(fd)
            conn.sendall(response(msg, status=M.ST["BAD_OPCODE"]))


def serve(listener):
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_conn, args=(conn,),
                         daemon=True).start()


CLIENT = r"""
import sys, PyKCS11
lib = PyKCS11.PyKCS11Lib()
lib.load(sys.argv[1])
slots = lib.getSlotList()
assert slots == [0, 1], slots
for _ in range(2):
    try:
        m = lib.getMechanismList(0)
        print("OK", m)
    except PyKCS11.PyKCS11Error as e:
        print("RV %#x" % e.value)
"""


ENCRYPT_CLIENT = r"""
import sys, PyKCS11
lib = PyKCS11.PyKCS11Lib()
lib.load(sys.argv[1])
s = lib.openSession(0)
key = PyKCS11.CK_OBJECT_HANDLE(s)
key.assign(5)
data = bytes(range(256)) * 400
for _ in range(int(sys.argv[2])):
    try:
        out = bytes(s.encrypt(key, data, PyKCS11.Mechanism(PyKCS11.CKM_AES_ECB)))
        print("OK" if out == data[::-1] else "WRONG %d" % len(out))
    except PyKCS11.PyKCS11Error as e:
        print("RV %#x" % e.value)
"""


def run_client(library, sock, mode, client=CLIENT, lines=2):
    MODE["name"] = mode
    env = dict(os.environ, PHSM_FW_SOCKETS=sock, PHSM_TRANSPORT="shm")
    out = subprocess.run(["/usr/bin/python3", "-c", client, library,
                          str(lines)],
                         env=env, capture_output=True, text=True,
                         timeout=30, check=False)
    assert out.returncode == 0, "client exit %d: %s" % (
        out.returncode, out.stderr.strip()[-300:])
    return out.stdout.split("\n")[:lines]


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    library = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="phsm-distrust.")
    sock = os.path.join(tmp, "fake.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock)
    listener.listen(8)
    threading.Thread(target=serve, args=(listener,), daemon=True).start()

    @M.check("a good answer over the fake channel")
    def _():
        lines = run_client(library, sock, "ok")
        assert lines[0].startswith("OK") and "CKM_" in lines[0], lines

    for mode, what in (("cid", "a completion with another command id"),
                       ("len", "a length beyond the data area"),
                       ("status", "an error status"),
                       ("overflow", "RESP_OVERFLOW"),
                       ("frame", "a header length unlike the completion's"),
                       ("tag", "an answer with another tag")):
        @M.check("%s: CKR_DEVICE_ERROR" % what)
        def _(mode=mode):
            lines = run_client(library, sock, mode)
            assert lines[0] == "RV %#x" % CKR_DEVICE_ERROR, lines

    @M.check("no answer and the daemon's end: CKR_DEVICE_REMOVED, twice")
    def _():
        start = time.monotonic()
        lines = run_client(library, sock, "gone")
        assert lines == ["RV %#x" % CKR_DEVICE_REMOVED] * 2, lines
        assert time.monotonic() - start < 10, "took %.1f s" % (
            time.monotonic() - start)

    @M.check("C_Encrypt's output copied from the channel: the data")
    def _():
        lines = run_client(library, sock, "out_ok", ENCRYPT_CLIENT, 3)
        assert lines == ["OK"] * 3, lines

    for mode, what in (("out_len", "an output length beyond the answer"),
                       ("out_mismatch", "an outlen unlike the output's")):
        @M.check("C_Encrypt, %s: CKR_DEVICE_ERROR" % what)
        def _(mode=mode):
            lines = run_client(library, sock, mode, ENCRYPT_CLIENT, 3)
            assert lines == ["RV %#x" % CKR_DEVICE_ERROR] * 3, lines

    @M.check("C_Encrypt, lengths rewritten while read: data or DEVICE_ERROR")
    def _():
        for _ in range(3):
            lines = run_client(library, sock, "out_scribble",
                               ENCRYPT_CLIENT, 1)
            assert lines[0] in ("OK", "RV %#x" % CKR_DEVICE_ERROR), lines

    os.unlink(sock)
    os.rmdir(tmp)
    passed = sum(M.results)
    failed = len(M.results) - passed
    print("summary: %d of %d checks passed" % (passed, passed + failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
