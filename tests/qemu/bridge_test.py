#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""phsm-fw --bridge: contexts named in the header (no QEMU needed).

    tests/qemu/bridge_test.py --fw build/bin/phsm-fw

Prints one line per test and "bridge: N passed, N failed".
"""
import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

MAGIC = 0x4D534850
OP_GET_SESSION_INFO, OP_OPEN_SESSION, OP_INIT_TOKEN = 0x0023, 0x0020, 0x0010
OP_APP_CLOSE, OP_NOP, OP_APP_OPEN = 0x0080, 0x0081, 0x0082
ST_OK, ST_TRAILING, ST_BAD_CONTEXT = 0, 9, 11
CKR_SESSION_HANDLE_INVALID = 0xB3


class Fail(Exception):
    pass


def eq(got, want, what):
    if got != want:
        raise Fail("%s: got %r, want %r" % (what, got, want))


def u64(v):
    return struct.pack("<HHIQ", 1, 0, 8, v)


def bfield(b):
    return struct.pack("<HHI", 2, 0, len(b)) + b


def request(opcode, ctx, tag, payload=b""):
    return struct.pack("<IHHIIQIIII", MAGIC, 1, opcode, 40 + len(payload), 0,
                       ctx, tag, 0, 0, 0) + payload


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(20)
        self.s.connect(path)
        self.pending = {}

    def send(self, msg):
        self.s.sendall(msg)

    def _recv(self, n):
        b = b""
        while len(b) < n:
            d = self.s.recv(n - len(b))
            if not d:
                raise Fail("connection closed")
            b += d
        return b

    def recv(self):
        hdr = self._recv(40)
        length = struct.unpack_from("<I", hdr, 8)[0]
        body = self._recv(length - 40)
        (_m, _v, op, _l, _f, ctx, tag, st, rv,
         _r) = struct.unpack("<IHHIIQIIII", hdr)
        return dict(opcode=op, app_ctx=ctx, tag=tag, status=st, rv=rv,
                    body=body)

    def call(self, opcode, ctx, tag, payload=b""):
        self.send(request(opcode, ctx, tag, payload))
        r = self.recv()
        eq(r["tag"], tag, "tag")
        return r


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def open_use_close(env):
    c = Conn(env["bridge"])
    eq(c.call(OP_NOP, 5, 1)["status"], ST_BAD_CONTEXT, "before APP_OPEN")
    eq(c.call(OP_APP_OPEN, 5, 2)["status"], ST_OK, "APP_OPEN")
    r = c.call(OP_NOP, 5, 3)
    eq((r["status"], r["app_ctx"]), (ST_OK, 5), "NOP in context 5")
    eq(c.call(OP_APP_OPEN, 5, 4)["status"], ST_BAD_CONTEXT, "open twice")
    eq(c.call(OP_APP_OPEN, 0, 5)["status"], ST_BAD_CONTEXT, "context 0")
    eq(c.call(OP_APP_OPEN, 6, 6, u64(1))["status"], ST_TRAILING,
       "APP_OPEN with a field")
    eq(c.call(OP_APP_CLOSE, 5, 7)["status"], ST_OK, "APP_CLOSE")
    eq(c.call(OP_NOP, 5, 8)["status"], ST_BAD_CONTEXT, "after APP_CLOSE")
    eq(c.call(OP_APP_CLOSE, 5, 9)["status"], ST_BAD_CONTEXT, "close twice")
    eq(c.call(OP_APP_OPEN, 5, 10)["status"], ST_OK, "reopen")


@test
def plain_socket_refuses_app_open(env):
    c = Conn(env["plain"])
    eq(c.call(OP_APP_OPEN, 1, 1)["status"], ST_BAD_CONTEXT, "plain APP_OPEN")
    eq(c.call(OP_NOP, 0, 2)["status"], ST_OK, "plain NOP")


@test
def contexts_are_separate(env):
    c = Conn(env["bridge"])
    for ctx in (1, 2):
        eq(c.call(OP_APP_OPEN, ctx, ctx)["status"], ST_OK, "open %d" % ctx)
    r = c.call(OP_INIT_TOKEN, 1, 3, u64(0) + bfield(b"so-pin-9876")
               + bfield(b"bridge".ljust(32)))
    eq((r["status"], r["rv"]), (ST_OK, 0), "INIT_TOKEN")
    r = c.call(OP_OPEN_SESSION, 1, 4, u64(0) + u64(6))
    eq((r["status"], r["rv"]), (ST_OK, 0), "OPEN_SESSION")
    sess = struct.unpack_from("<Q", r["body"], 8)[0]
    eq(c.call(OP_GET_SESSION_INFO, 1, 5, u64(sess))["rv"], 0, "own session")
    eq(c.call(OP_GET_SESSION_INFO, 2, 6, u64(sess))["rv"],
       CKR_SESSION_HANDLE_INVALID, "other context")
    # A pipelined close: the requests before it still run in context 1.
    c.send(request(OP_GET_SESSION_INFO, 1, 7, u64(sess)))
    c.send(request(OP_APP_CLOSE, 1, 8))
    c.send(request(OP_GET_SESSION_INFO, 1, 9, u64(sess)))
    got = {}
    for _ in range(3):
        r = c.recv()
        got[r["tag"]] = r
    eq(got[7]["rv"], 0, "request before the close")
    eq(got[8]["status"], ST_OK, "close")
    eq(got[9]["status"], ST_BAD_CONTEXT, "request after the close")
    c.call(OP_APP_OPEN, 1, 10)
    eq(c.call(OP_GET_SESSION_INFO, 1, 11, u64(sess))["rv"],
       CKR_SESSION_HANDLE_INVALID, "session gone with its context")


@test
def connection_end_closes_contexts(env):
    c = Conn(env["bridge"])
    c.call(OP_APP_OPEN, 1, 1)
    r = c.call(OP_OPEN_SESSION, 1, 2, u64(0) + u64(6))
    eq(r["rv"], 0, "OPEN_SESSION")
    sess = struct.unpack_from("<Q", r["body"], 8)[0]
    c.s.close()
    d = Conn(env["bridge"])
    d.call(OP_APP_OPEN, 1, 1)
    deadline = time.time() + 5
    while d.call(OP_GET_SESSION_INFO, 1, 3, u64(sess))["rv"] == 0:
        if time.time() > deadline:
            raise Fail("session survived its bridge connection")
        time.sleep(0.05)


@test
def many_pipelined(env):
    c = Conn(env["bridge"])
    n = 2000
    for ctx in range(100, 110):
        c.send(request(OP_APP_OPEN, ctx, ctx))
    # Send from a thread: the daemon stops reading while its answers wait.
    sender = threading.Thread(target=lambda: c.send(b"".join(
        request(OP_NOP, 100 + i % 10, 1000 + i) for i in range(n))))
    sender.start()
    seen = set()
    for _ in range(10 + n):
        r = c.recv()
        eq(r["status"], ST_OK, "tag %d" % r["tag"])
        seen.add(r["tag"])
    sender.join()
    eq(len(seen), 10 + n, "every answer once")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fw", required=True)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="phsm-bridge.")
    env = dict(bridge=os.path.join(tmp, "b.sock"),
               plain=os.path.join(tmp, "p.sock"))
    log = open(os.path.join(tmp, "fw.log"), "wb")
    fw = subprocess.Popen([args.fw, "--state", os.path.join(tmp, "st"),
                           "--socket", env["plain"], "--bridge", env["bridge"],
                           "--pin-iterations", "1000"],
                          stdout=log, stderr=subprocess.STDOUT)
    passed = failed = 0
    try:
        for _ in range(200):
            if os.path.exists(env["bridge"]) and os.path.exists(env["plain"]):
                break
            time.sleep(0.05)
        for fn in TESTS:
            try:
                fn(env)
                print("  PASS  bridge/%s" % fn.__name__)
                passed += 1
            except Exception as e:  # noqa: BLE001
                print("  FAIL  bridge/%s: %s" % (fn.__name__, e))
                failed += 1
    finally:
        fw.terminate()
        rc = fw.wait(10)
        if rc != 0:
            print("  FAIL  bridge/exit: phsm-fw exit status %d" % rc)
            failed += 1
        if failed:
            with open(os.path.join(tmp, "fw.log"), errors="replace") as f:
                sys.stdout.write(f.read()[-2000:])
        shutil.rmtree(tmp, ignore_errors=True)
    print("bridge: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
