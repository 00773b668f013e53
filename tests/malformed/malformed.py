#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Send malformed messages straight to a phsm-fw socket.

Every malformed message must get an error response with the precise
PHSM_ST_* status and the connection must go on; a message whose header
cannot be framed (bad magic, length < 40 or > PHSM_MSG_MAX) gets an error
response and the connection is closed.  At the end the daemon must still
answer a valid GET_CARD_INFO on a new connection.

Usage: malformed.py SOCKET
Prints one "PASS: name" or "FAIL: name: why" line per check and exits
non-zero if any check failed.
"""

import os
import random
import re
import socket
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_H = os.path.join(HERE, "..", "..", "uapi", "phsm_proto.h")


def load_constants(path):
    """The PHSM_* enum values and defines, read from the contract itself."""
    consts = {}
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for name, value in re.findall(
            r"^\s*(PHSM_[A-Z0-9_]+)\s*=\s*(0x[0-9a-fA-F]+|\d+)", text, re.M):
        consts[name] = int(value, 0)
    for name, value in re.findall(
            r"^#define\s+(PHSM_[A-Z0-9_]+)\s+\(?(0x[0-9a-fA-F]+|\d+)u?\)?",
            text, re.M):
        consts[name] = int(value, 0)
    consts["PHSM_MSG_MAX"] = 16 << 20
    return consts


C = load_constants(PROTO_H)
ST = {k[len("PHSM_ST_"):]: v for k, v in C.items() if k.startswith("PHSM_ST_")}
ST_NAME = {v: k for k, v in ST.items()}
OP = {k[len("PHSM_OP_"):]: v for k, v in C.items() if k.startswith("PHSM_OP_")}
MAGIC = C["PHSM_PROTO_MAGIC"]
VERSION = C["PHSM_PROTO_VERSION"]
F_RESPONSE = C["PHSM_MSG_F_RESPONSE"]
FT_U64, FT_BYTES, FT_U64_ARRAY, FT_ATTRS, FT_MECH = (
    C["PHSM_FT_U64"], C["PHSM_FT_BYTES"], C["PHSM_FT_U64_ARRAY"],
    C["PHSM_FT_ATTRS"], C["PHSM_FT_MECH"])
ATTR_F_VALUE = C["PHSM_ATTR_F_VALUE"]

HDR = struct.Struct("<IHHIIQIIII")
assert HDR.size == 40
CARD_INFO_LEN = 32 + 16 + 16 + 4 + 4 + 8 + 8
CKR_OK = 0
CKR_SLOT_ID_INVALID = 0x3
TIMEOUT = 20.0


# --- encoding ---------------------------------------------------------------

def field(ftype, value, reserved=0, length=None):
    n = len(value) if length is None else length
    return struct.pack("<HHI", ftype, reserved, n) + value


def u64(v):
    return field(FT_U64, struct.pack("<Q", v))


def bytes_field(b):
    return field(FT_BYTES, b)


def attrs(entries, count=None, reserved=0):
    """entries: (type, flags, len, value bytes)"""
    body = b"".join(struct.pack("<QII", t, n, fl) + v
                    for t, fl, n, v in entries)
    n = len(entries) if count is None else count
    return field(FT_ATTRS, struct.pack("<II", n, reserved) + body)


def mech(mechanism, param=b"", param_len=None, reserved=0):
    n = len(param) if param_len is None else param_len
    return field(FT_MECH, struct.pack("<QII", mechanism, n, reserved) + param)


def message(opcode, payload=b"", tag=1, magic=MAGIC, version=VERSION,
            length=None, flags=0, app_ctx=0, status=0, rv=0, reserved=0):
    n = HDR.size + len(payload) if length is None else length
    return HDR.pack(magic, version, opcode, n, flags, app_ctx, tag, status,
                    rv, reserved) + payload


# --- transport --------------------------------------------------------------

class Closed(Exception):
    pass


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(TIMEOUT)
        self.s.connect(path)

    def send(self, data):
        try:
            self.s.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise Closed(str(e)) from e

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.s.recv(n - len(buf))
            except ConnectionResetError as e:
                raise Closed("connection reset") from e
            if not chunk:
                raise Closed("connection closed after %d bytes" % len(buf))
            buf += chunk
        return buf

    def recv_msg(self):
        """(header tuple as dict, payload)"""
        h = self.recv_exact(HDR.size)
        (magic, version, opcode, length, flags, app_ctx, tag, status, rv,
         reserved) = HDR.unpack(h)
        if magic != MAGIC or length < HDR.size or length > C["PHSM_MSG_MAX"]:
            raise AssertionError("response header is bad: %r" % h)
        payload = self.recv_exact(length - HDR.size)
        return dict(opcode=opcode, version=version, length=length,
                    flags=flags, tag=tag, status=status, rv=rv,
                    reserved=reserved), payload

    def is_closed(self):
        """True if the daemon closes the connection (EOF or reset)."""
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


# --- checks -----------------------------------------------------------------

results = []


def check(name):
    def wrap(fn):
        try:
            fn()
        except AssertionError as e:
            results.append(False)
            print("FAIL: %s: %s" % (name, e), flush=True)
        except (Closed, OSError) as e:
            results.append(False)
            print("FAIL: %s: %s: %s" % (name, type(e).__name__, e),
                  flush=True)
        else:
            results.append(True)
            print("PASS: %s" % name, flush=True)
        return fn
    return wrap


def st_name(v):
    return ST_NAME.get(v, str(v))


def expect_status(hdr, status, tag=None, opcode=None):
    assert hdr["flags"] & F_RESPONSE, "response flag not set"
    assert hdr["status"] == status, "status %s, want %s" % (
        st_name(hdr["status"]), st_name(status))
    if tag is not None:
        assert hdr["tag"] == tag, "tag %d, want %d" % (hdr["tag"], tag)
    if opcode is not None:
        assert hdr["opcode"] == opcode, "opcode %#x, want %#x" % (
            hdr["opcode"], opcode)


def nop_works(c, tag=4242):
    """The connection still serves a valid request."""
    c.send(message(OP["NOP"], tag=tag))
    hdr, _ = c.recv_msg()
    expect_status(hdr, ST["OK"], tag=tag, opcode=OP["NOP"])
    assert hdr["rv"] == CKR_OK, "NOP rv %#x" % hdr["rv"]


def rejected(msg, status, tag=7, opcode=None):
    """msg gets an error with this status and the connection goes on."""
    c = Conn(SOCK)
    try:
        c.send(msg)
        hdr, _ = c.recv_msg()
        expect_status(hdr, status, tag=tag, opcode=opcode)
        nop_works(c)
    finally:
        c.close()


def unframeable(msg, status=None):
    """msg gets an error response and the connection is closed."""
    c = Conn(SOCK)
    try:
        c.send(msg)
        hdr, _ = c.recv_msg()
        assert hdr["status"] != ST["OK"], "status OK for unframeable input"
        if status is not None:
            assert hdr["status"] == status, "status %s, want %s" % (
                st_name(hdr["status"]), st_name(status))
        assert c.is_closed(), "connection not closed"
    finally:
        c.close()


def run_checks():
    tok = OP["GET_TOKEN_INFO"]

    @check("valid GET_CARD_INFO answers")
    def _():
        card_info_works()

    @check("app_ctx of a socket request is ignored")
    def _():
        rejected(message(OP["NOP"], tag=7, app_ctx=0xdeadbeef), ST["OK"])

    @check("bad magic: error and close")
    def _():
        unframeable(message(OP["NOP"], magic=0x12345678), ST["BAD_MAGIC"])

    @check("length < header: error and close")
    def _():
        unframeable(message(OP["NOP"], length=39), ST["BAD_LENGTH"])

    @check("length 0: error and close")
    def _():
        unframeable(message(OP["NOP"], length=0), ST["BAD_LENGTH"])

    @check("length > PHSM_MSG_MAX: error and close")
    def _():
        unframeable(message(OP["NOP"], length=C["PHSM_MSG_MAX"] + 1),
                    ST["BAD_LENGTH"])

    @check("length 0xffffffff: error and close")
    def _():
        unframeable(message(OP["NOP"], length=0xffffffff), ST["BAD_LENGTH"])

    @check("bad version")
    def _():
        rejected(message(OP["NOP"], tag=7, version=VERSION + 1),
                 ST["BAD_VERSION"])

    @check("version 0")
    def _():
        rejected(message(OP["NOP"], tag=7, version=0), ST["BAD_VERSION"])

    @check("unknown header flag")
    def _():
        rejected(message(OP["NOP"], tag=7, flags=0x80), ST["BAD_HEADER"])

    @check("response flag on a request")
    def _():
        rejected(message(OP["NOP"], tag=7, flags=F_RESPONSE),
                 ST["BAD_HEADER"])

    @check("non-zero status in a request")
    def _():
        rejected(message(OP["NOP"], tag=7, status=3), ST["BAD_HEADER"])

    @check("non-zero rv in a request")
    def _():
        rejected(message(OP["NOP"], tag=7, rv=5), ST["BAD_HEADER"])

    @check("non-zero reserved in a request")
    def _():
        rejected(message(OP["NOP"], tag=7, reserved=1), ST["BAD_HEADER"])

    @check("unknown opcode")
    def _():
        rejected(message(0x7777, tag=7), ST["BAD_OPCODE"], opcode=0x7777)

    @check("opcode 0")
    def _():
        rejected(message(0, tag=7), ST["BAD_OPCODE"])

    @check("unused Luna range opcode")
    def _():
        rejected(message(0x01ff, tag=7), ST["BAD_OPCODE"])

    @check("missing field")
    def _():
        rejected(message(tok, tag=7), ST["TRUNCATED"], opcode=tok)

    @check("field header cut short")
    def _():
        rejected(message(tok, u64(0)[:5], tag=7), ST["TRUNCATED"])

    @check("field value runs past the end")
    def _():
        rejected(message(tok, field(FT_U64, struct.pack("<Q", 0),
                                    length=64), tag=7), ST["TRUNCATED"])

    @check("huge BYTES length")
    def _():
        payload = u64(0) + field(FT_BYTES, b"x" * 8, length=0xfffffff0) + \
            bytes_field(b" " * 32)
        rejected(message(OP["INIT_TOKEN"], payload, tag=7), ST["TRUNCATED"])

    @check("wrong field type (BYTES for U64)")
    def _():
        rejected(message(tok, bytes_field(b"\0" * 8), tag=7),
                 ST["BAD_FIELD"])

    @check("unknown field type")
    def _():
        rejected(message(tok, field(99, b"\0" * 8), tag=7), ST["BAD_FIELD"])

    @check("non-zero field reserved")
    def _():
        rejected(message(tok, field(FT_U64, b"\0" * 8, reserved=1), tag=7),
                 ST["BAD_FIELD"])

    @check("U64 of length 4")
    def _():
        rejected(message(tok, field(FT_U64, b"\0" * 4), tag=7),
                 ST["BAD_VALUE"])

    @check("trailing bytes after the last field")
    def _():
        rejected(message(tok, u64(0) + b"\0\0\0", tag=7), ST["TRAILING"])

    @check("extra field")
    def _():
        rejected(message(tok, u64(0) + u64(1), tag=7), ST["TRAILING"])

    @check("payload on a request that takes none")
    def _():
        rejected(message(OP["GET_CARD_INFO"], u64(0), tag=7), ST["TRAILING"])

    find_init = OP["FIND_INIT"]

    @check("attribute list with a huge count")
    def _():
        rejected(message(find_init, u64(1) + attrs([], count=0xffffffff),
                         tag=7), ST["BAD_VALUE"])

    @check("attribute list longer than PHSM_ATTRS_MAX")
    def _():
        n = C["PHSM_ATTRS_MAX"] + 1
        entries = [(0x80000000 + i, ATTR_F_VALUE, 0, b"") for i in range(n)]
        rejected(message(find_init, u64(1) + attrs(entries), tag=7),
                 ST["BAD_VALUE"])

    @check("attribute count larger than the entries")
    def _():
        entries = [(3, ATTR_F_VALUE, 1, b"x")]
        rejected(message(find_init, u64(1) + attrs(entries, count=5), tag=7),
                 ST["BAD_VALUE"])

    @check("attribute value runs past the list")
    def _():
        entries = [(3, ATTR_F_VALUE, 1000, b"abcd"),
                   (3, ATTR_F_VALUE, 0, b"")]
        rejected(message(find_init, u64(1) + attrs(entries), tag=7),
                 ST["TRUNCATED"])

    @check("attribute list reserved word non-zero")
    def _():
        rejected(message(find_init, u64(1) + attrs([], reserved=1), tag=7),
                 ST["BAD_VALUE"])

    @check("attribute with unknown flags")
    def _():
        entries = [(3, 0x100 | ATTR_F_VALUE, 1, b"x")]
        rejected(message(find_init, u64(1) + attrs(entries), tag=7),
                 ST["BAD_VALUE"])

    @check("attribute list too short for its header")
    def _():
        rejected(message(find_init, u64(1) + field(FT_ATTRS, b"\0\0\0"),
                         tag=7), ST["BAD_VALUE"])

    op_init = OP["OP_INIT"]

    @check("mechanism param_len disagrees with the field")
    def _():
        payload = u64(1) + u64(4) + mech(0x250, b"", param_len=100) + u64(0)
        rejected(message(op_init, payload, tag=7), ST["BAD_VALUE"])

    @check("mechanism reserved non-zero")
    def _():
        payload = u64(1) + u64(4) + mech(0x250, reserved=9) + u64(0)
        rejected(message(op_init, payload, tag=7), ST["BAD_VALUE"])

    @check("mechanism field too short")
    def _():
        payload = u64(1) + u64(4) + field(FT_MECH, b"\0" * 7) + u64(0)
        rejected(message(op_init, payload, tag=7), ST["BAD_VALUE"])

    @check("well-formed request for a partition that does not exist")
    def _():
        c = Conn(SOCK)
        try:
            c.send(message(tok, u64(1000), tag=9))
            hdr, _ = c.recv_msg()
            expect_status(hdr, ST["OK"], tag=9)
            assert hdr["rv"] == CKR_SLOT_ID_INVALID, "rv %#x" % hdr["rv"]
        finally:
            c.close()

    @check("pipelined requests all answered by tag")
    def _():
        c = Conn(SOCK)
        try:
            tags = list(range(100, 120))
            batch = b""
            for t in tags:
                if t % 2:
                    batch += message(OP["NOP"], tag=t)
                else:
                    batch += message(0x7777, tag=t)
            c.send(batch)
            seen = {}
            for _ in tags:
                hdr, _ = c.recv_msg()
                seen[hdr["tag"]] = hdr["status"]
            assert sorted(seen) == tags, "tags %r" % sorted(seen)
            for t in tags:
                want = ST["OK"] if t % 2 else ST["BAD_OPCODE"]
                assert seen[t] == want, "tag %d status %s" % (
                    t, st_name(seen[t]))
        finally:
            c.close()

    @check("a half message then EOF does not upset the daemon")
    def _():
        c = Conn(SOCK)
        c.send(message(OP["NOP"], tag=1)[:20])
        c.s.shutdown(socket.SHUT_WR)
        c.is_closed()
        c.close()
        c = Conn(SOCK)
        m = message(tok, u64(0), tag=1)
        c.send(m[:-4])
        c.close()
        card_info_works()

    @check("100 random headers with valid framing")
    def _():
        rng = random.Random(1234)
        c = Conn(SOCK)
        try:
            for i in range(100):
                payload = bytes(rng.getrandbits(8)
                                for _ in range(rng.randrange(0, 200)))
                opcode = rng.choice(list(OP.values()) + [rng.randrange(65536)])
                msg = message(opcode, payload, tag=1000 + i,
                              version=rng.choice([VERSION, VERSION, 7]),
                              flags=rng.choice([0, 0, 0, 2]))
                c.send(msg)
                hdr, _ = c.recv_msg()
                assert hdr["tag"] == 1000 + i, "tag %d" % hdr["tag"]
                assert hdr["flags"] & F_RESPONSE, "no response flag"
            nop_works(c)
        finally:
            c.close()

    @check("random field sequences for every opcode")
    def _():
        rng = random.Random(99)
        c = Conn(SOCK)
        try:
            tag = 5000
            for opcode in sorted(OP.values()):
                if opcode in (OP["APP_CLOSE"],):
                    continue
                for _ in range(10):
                    fields = b""
                    for _ in range(rng.randrange(0, 6)):
                        t = rng.choice([FT_U64, FT_BYTES, FT_U64_ARRAY,
                                        FT_ATTRS, FT_MECH])
                        if t == FT_U64:
                            fields += u64(rng.choice(
                                [0, 1, 2, 0xffffffffffffffff,
                                 rng.getrandbits(64)]))
                        elif t == FT_ATTRS:
                            fields += attrs(
                                [(rng.getrandbits(32), ATTR_F_VALUE, 1, b"\1")],
                                count=rng.choice([0, 1, 2, 300]))
                        elif t == FT_MECH:
                            fields += mech(rng.getrandbits(16),
                                           bytes(rng.getrandbits(8)
                                                 for _ in range(
                                                     rng.randrange(0, 24))))
                        else:
                            fields += field(t, bytes(
                                rng.getrandbits(8)
                                for _ in range(rng.randrange(0, 24))))
                    tag += 1
                    c.send(message(opcode, fields, tag=tag))
                    hdr, _ = c.recv_msg()
                    assert hdr["tag"] == tag, "tag %d" % hdr["tag"]
            nop_works(c)
        finally:
            c.close()

    @check("random garbage: error and close")
    def _():
        rng = random.Random(7)
        for _ in range(20):
            junk = bytes(rng.getrandbits(8) for _ in range(rng.randrange(40, 400)))
            if junk[:4] == struct.pack("<I", MAGIC):
                continue
            c = Conn(SOCK)
            try:
                try:
                    c.send(junk)
                    hdr, _ = c.recv_msg()
                    assert hdr["status"] == ST["BAD_MAGIC"], \
                        "status %s" % st_name(hdr["status"])
                except Closed:
                    # Closed before we could read: the daemon may reset a
                    # connection it drops with input still unread.
                    pass
                assert c.is_closed(), "connection not closed"
            finally:
                c.close()

    @check("many connections dropped at once")
    def _():
        conns = [Conn(SOCK) for _ in range(50)]
        for i, c in enumerate(conns):
            c.send(message(OP["GET_CARD_INFO"], tag=i)[: i % 41])
        for c in conns:
            c.close()

    @check("requests of one connection run in parallel")
    def _():
        parallel_requests()

    clone_checks()

    @check("daemon still serves GET_CARD_INFO on a new connection")
    def _():
        card_info_works()


def call(c, opcode, payload, tag):
    c.send(message(opcode, payload, tag=tag))
    hdr, reply = c.recv_msg()
    expect_status(hdr, ST["OK"], tag=tag, opcode=opcode)
    assert hdr["rv"] == CKR_OK, "opcode %#x rv %#x" % (opcode, hdr["rv"])
    return reply


def parallel_requests():
    """A slow request (RSA-4096 key generation, hundreds of ms) and a NOP
    sent right behind it on the same connection: the NOP is answered
    first, so the daemon does not run one connection's requests in turn.
    An ordering check, not a timing one."""
    ckf_serial, ckf_rw = 0x4, 0x2
    cka_token, cka_private, cka_modulus_bits = 0x1, 0x2, 0x121
    ckm_rsa_keygen = 0x0
    part = 1
    c = Conn(SOCK)
    try:
        call(c, OP["INIT_TOKEN"], u64(part) + bytes_field(b"12345678") +
             bytes_field(b"parallel".ljust(32)), tag=1)
        reply = call(c, OP["OPEN_SESSION"],
                     u64(part) + u64(ckf_serial | ckf_rw), tag=2)
        sess = struct.unpack_from("<Q", reply, 8)[0]
        false = b"\0"
        pub = attrs([(cka_token, ATTR_F_VALUE, 1, false),
                     (cka_modulus_bits, ATTR_F_VALUE, 8,
                      struct.pack("<Q", 4096))])
        priv = attrs([(cka_token, ATTR_F_VALUE, 1, false),
                      (cka_private, ATTR_F_VALUE, 1, false)])
        c.send(message(OP["GENERATE_KEY_PAIR"],
                       u64(sess) + mech(ckm_rsa_keygen) + pub + priv,
                       tag=10))
        c.send(message(OP["NOP"], tag=11))
        first, _ = c.recv_msg()
        second, _ = c.recv_msg()
        assert (first["tag"], second["tag"]) == (11, 10), \
            "answers came as tags %d, %d" % (first["tag"], second["tag"])
        assert second["rv"] == CKR_OK, "key pair rv %#x" % second["rv"]
    finally:
        c.close()


# --- cloning (Documentation/phsm/cloning.rst) --------------------------------

CKR_ARGUMENTS_BAD = 0x7
CKR_DATA_INVALID = 0x20
CKR_ENCRYPTED_DATA_INVALID = 0x40
CKR_MECHANISM_INVALID = 0x70
CKR_MECHANISM_PARAM_INVALID = 0x71
CKR_OPERATION_NOT_INITIALIZED = 0x91
CKR_SESSION_EXISTS = 0xb6
VD = 0x80000000
CKR_OBJECT_TYPE_INVALID = VD + 0x112
CKR_SESSION_NEGOTIATION_INVALID = VD + 0x10C
CKM_CPV4_EXTRACT, CKM_CPV4_INSERT = 0x80000208, 0x80000209
OUT_QUERY = 0xffffffffffffffff
CAP = 1 << 16


def parse_fields(payload):
    """The fields of a response payload, as (type, value) pairs."""
    out, off = [], 0
    while off < len(payload):
        ftype, _, n = struct.unpack_from("<HHI", payload, off)
        out.append((ftype, payload[off + 8:off + 8 + n]))
        off += 8 + n
    return out


def field_u64(v):
    return struct.unpack("<Q", v)[0]


def u64_array(values):
    return field(FT_U64_ARRAY, b"".join(struct.pack("<Q", v) for v in values))


class Clone:
    """One connection with a user session on each partition of the card,
    both partitions holding the same cloning domain."""

    def __init__(self):
        self.c = Conn(SOCK)
        self.tag = 20000
        self.s = [self.setup(part) for part in (0, 1)]

    def req(self, opcode, payload):
        """(rv, fields) of one request that must get status OK."""
        self.tag += 1
        self.c.send(message(opcode, payload, tag=self.tag))
        hdr, reply = self.c.recv_msg()
        expect_status(hdr, ST["OK"], tag=self.tag, opcode=opcode)
        return hdr["rv"], parse_fields(reply)

    def ok(self, opcode, payload):
        rv, fields = self.req(opcode, payload)
        assert rv == CKR_OK, "opcode %#x rv %#x" % (opcode, rv)
        return fields

    def setup(self, part):
        for _ in range(40):
            rv, _ = self.req(OP["INIT_TOKEN"], u64(part) +
                             bytes_field(b"12345678") +
                             bytes_field(b"malformed clone".ljust(32)))
            if rv != CKR_SESSION_EXISTS:
                break
        assert rv == CKR_OK, "INIT_TOKEN rv %#x" % rv
        sess = field_u64(self.ok(OP["OPEN_SESSION"], u64(part) + u64(6))[0][1])
        self.ok(OP["LOGIN"], u64(sess) + u64(0) + bytes_field(b"12345678") +
                bytes_field(b""))
        self.ok(OP["INIT_PIN"], u64(sess) + bytes_field(b"user-pin"))
        self.ok(OP["CA_ADD_KCV"], u64(sess) + bytes_field(b"malformed kcv") +
                bytes_field(b"dom") + u64(1))
        self.ok(OP["LOGOUT"], u64(sess))
        self.ok(OP["LOGIN"], u64(sess) + u64(1) + bytes_field(b"user-pin") +
                bytes_field(b""))
        return sess

    def start(self):
        fields = self.ok(OP["MIGRATION_START"], u64(self.s[0]) +
                         bytes_field(b"") + u64(CAP))
        return fields[1][1]

    def cont(self, part, step, data, sid=b""):
        """(rv, output, sid) of a Continue."""
        rv, fields = self.req(OP["MIGRATION_CONTINUE"], u64(self.s[part]) +
                              u64(step) + bytes_field(data) +
                              bytes_field(sid) + u64(CAP) + u64(64))
        if rv != CKR_OK:
            return rv, None, None
        return rv, fields[1][1], fields[4][1]

    def established(self):
        """A clone session, partition 0 the initiator; its ID."""
        m1 = self.start()
        rv, m2, sid = self.cont(1, 1, m1)
        assert rv == CKR_OK, "step 1 rv %#x" % rv
        rv, m3, _ = self.cont(0, 2, m2, sid)
        assert rv == CKR_OK, "step 2 rv %#x" % rv
        rv, m4, _ = self.cont(1, 3, m3, sid)
        assert rv == CKR_OK, "step 3 rv %#x" % rv
        rv, _, _ = self.cont(0, 4, m4, sid)
        assert rv == CKR_OK, "step 4 rv %#x" % rv
        return sid

    def aes_key(self):
        cka_token, cka_value_len = 0x1, 0x161
        fields = self.ok(OP["GENERATE_KEY"], u64(self.s[0]) + mech(0x1080) +
                         attrs([(cka_token, ATTR_F_VALUE, 1, b"\0"),
                                (cka_value_len, ATTR_F_VALUE, 8,
                                 struct.pack("<Q", 32))]))
        return field_u64(fields[0][1])

    def extract(self, param):
        return self.req(OP["EXTRACT"], u64(self.s[0]) +
                        mech(CKM_CPV4_EXTRACT, param))

    def insert(self, param):
        return self.req(OP["INSERT"], u64(self.s[1]) +
                        mech(CKM_CPV4_INSERT, param))

    def close(self):
        self.c.close()


def extract_param(sid, handles, types=None, caps=None, flags=0):
    n = len(handles)
    return (bytes_field(sid) + bytes_field(b"") + u64(flags) +
            u64_array(types if types is not None else [0] * n) +
            u64_array(handles) +
            u64_array(caps if caps is not None else [CAP] * n))


def insert_param(sid, blobs, lens=None, storage=None, types=None, flags=0):
    n = len(blobs)
    return (bytes_field(sid) + u64(flags) +
            u64_array(storage if storage is not None else [0] * n) +
            u64_array(types if types is not None else [0] * n) +
            u64_array(lens if lens is not None else [len(b) for b in blobs]) +
            bytes_field(b"".join(blobs)))


def strides(n, count=48):
    return range(0, n, max(1, n // count))


def clone_checks():
    """Step messages, blobs and cloning parameters cut short, altered and
    made up, straight to the socket: each gets its error, none creates
    anything or upsets the daemon."""
    cl = None

    @check("clone: two partitions with a common domain")
    def _():
        nonlocal cl
        cl = Clone()

    if cl is None:
        return

    @check("clone: Start with an input")
    def _():
        rv, _ = cl.req(OP["MIGRATION_START"], u64(cl.s[0]) +
                       bytes_field(b"future") + u64(CAP))
        assert rv == CKR_ARGUMENTS_BAD, "rv %#x" % rv

    @check("clone: m1 cut short at every length")
    def _():
        m1 = cl.start()
        for k in strides(len(m1)):
            rv, _, _ = cl.cont(1, 1, m1[:k])
            want = (CKR_ARGUMENTS_BAD, CKR_SESSION_NEGOTIATION_INVALID) \
                if k == 0 else (CKR_SESSION_NEGOTIATION_INVALID,)
            assert rv in want, "%d of %d bytes: rv %#x" % (k, len(m1), rv)

    @check("clone: m1 with a byte more")
    def _():
        rv, _, _ = cl.cont(1, 1, cl.start() + b"\0")
        assert rv == CKR_SESSION_NEGOTIATION_INVALID, "rv %#x" % rv

    @check("clone: m1 with one byte altered, anywhere")
    def _():
        m1 = cl.start()
        for i in strides(len(m1), 96):
            bad = bytearray(m1)
            bad[i] ^= 0x5a
            rv, _, _ = cl.cont(1, 1, bytes(bad))
            assert rv not in (CKR_OK,), "byte %d: accepted" % i

    @check("clone: garbage as m2, m3, m4")
    def _():
        rng = random.Random(44)
        for _ in range(10):
            junk = bytes(rng.getrandbits(8)
                         for _ in range(rng.randrange(1, 300)))
            for part, step in ((0, 2), (1, 3), (0, 4)):
                rv, _, _ = cl.cont(part, step, junk, b"s" * 16)
                assert rv == CKR_SESSION_NEGOTIATION_INVALID, \
                    "step %d: rv %#x" % (step, rv)

    @check("clone: a made-up message of every type")
    def _():
        for t in (1, 2, 3, 4, 0x11, 0x31, 0x32, 0x33, 0x34, 99):
            msg = u64(0x314e4c434d534850) + u64(1) + u64(t) + \
                bytes_field(b"n" * 32)
            for part, step in ((1, 1), (0, 2), (1, 3), (0, 4)):
                rv, _, _ = cl.cont(part, step, msg, b"" if step == 1
                                   else b"s" * 16)
                assert rv != CKR_OK, "type %#x step %d accepted" % (t, step)

    sid = None
    key = None
    blob = None

    @check("clone: a session and a blob")
    def _():
        nonlocal sid, key, blob
        sid = cl.established()
        key = cl.aes_key()
        rv, fields = cl.extract(extract_param(sid, [key]))
        assert rv == CKR_OK, "extract rv %#x" % rv
        assert field_u64(fields[0][1][:8]) == CKR_OK, "result"
        blob = fields[2][1]
        assert len(blob) == field_u64(fields[1][1][:8]) > 160, "blob length"

    if blob is None:
        return

    def insert_result(data, want):
        rv, fields = cl.insert(insert_param(sid, [data]))
        assert rv == CKR_OK, "insert rv %#x" % rv
        res = field_u64(fields[0][1][:8])
        assert res in want, "result %#x" % res

    @check("clone: blobs cut short at every length")
    def _():
        for k in strides(len(blob)):
            if k:
                insert_result(blob[:k], (CKR_DATA_INVALID,))

    @check("clone: blobs with one byte altered, anywhere")
    def _():
        for i in strides(len(blob), 96):
            bad = bytearray(blob)
            bad[i] ^= 0x5a
            insert_result(bytes(bad), (CKR_DATA_INVALID,
                                       CKR_ENCRYPTED_DATA_INVALID,
                                       CKR_OBJECT_TYPE_INVALID))

    @check("clone: random blobs")
    def _():
        rng = random.Random(45)
        for _ in range(20):
            junk = bytes(rng.getrandbits(8)
                         for _ in range(rng.randrange(1, 400)))
            insert_result(junk, (CKR_DATA_INVALID,))

    @check("clone: the intact blob still goes in, once")
    def _():
        insert_result(blob, (CKR_OK,))
        insert_result(blob, (CKR_DATA_INVALID,))

    def param_invalid(rv_fields, what):
        rv, fields = rv_fields
        assert rv == CKR_MECHANISM_PARAM_INVALID, "%s: rv %#x" % (what, rv)
        assert not fields, "%s: fields with an error" % what

    @check("clone: CA_Extract parameters that do not fit")
    def _():
        param_invalid(cl.extract(extract_param(sid, [key], types=[0, 0])),
                      "types count")
        param_invalid(cl.extract(extract_param(sid, [key], caps=[])),
                      "caps count")
        param_invalid(cl.extract(extract_param(sid, [])), "no object")
        param_invalid(cl.extract(extract_param(sid, [key] * 1025)),
                      "1025 objects")
        param_invalid(cl.extract(extract_param(sid, [key, key],
                                               caps=[CAP, OUT_QUERY])),
                      "half a size query")
        param_invalid(cl.extract(extract_param(sid, [key])[:-8]),
                      "cut short")
        param_invalid(cl.extract(extract_param(sid, [key]) + u64(0)),
                      "extra field")
        param_invalid(cl.extract(b""), "empty")
        rv, _ = cl.req(OP["EXTRACT"], u64(cl.s[0]) +
                       mech(CKM_CPV4_INSERT, extract_param(sid, [key])))
        assert rv == CKR_MECHANISM_INVALID, "other mechanism: rv %#x" % rv

    @check("clone: CA_Insert parameters that do not fit")
    def _():
        param_invalid(cl.insert(insert_param(sid, [blob],
                                             lens=[len(blob) + 1])),
                      "lengths past the blobs")
        param_invalid(cl.insert(insert_param(sid, [blob],
                                             lens=[len(blob) - 1])),
                      "lengths short of the blobs")
        param_invalid(cl.insert(insert_param(sid, [blob], lens=[1 << 63])),
                      "huge length")
        param_invalid(cl.insert(insert_param(sid, [blob],
                                             lens=[len(blob), 0])),
                      "lens count")
        param_invalid(cl.insert(insert_param(sid, [blob], storage=[])),
                      "storage count")
        param_invalid(cl.insert(insert_param(sid, [])), "no object")
        param_invalid(cl.insert(insert_param(sid, [blob])[:-3]), "cut short")
        rv, _ = cl.req(OP["INSERT"], u64(cl.s[1]) +
                       mech(CKM_CPV4_EXTRACT, insert_param(sid, [blob])))
        assert rv == CKR_MECHANISM_INVALID, "other mechanism: rv %#x" % rv

    @check("clone: CPv3 messages cut short, altered, made up")
    def _():
        s0, s1 = cl.s
        twc = cl.ok(OP["CLONE_SOURCE_INIT"], u64(s0) + bytes_field(b"") +
                    u64(0) + u64(CAP))[0][1]
        for k in strides(len(twc)):
            rv, _ = cl.req(OP["CLONE_TARGET_INIT"], u64(s1) +
                           bytes_field(twc[:k]) + bytes_field(b"") + u64(0) +
                           u64(CAP))
            assert rv != CKR_OK, "TWC of %d bytes accepted" % k
        for i in strides(len(twc), 96):
            bad = bytearray(twc)
            bad[i] ^= 0x5a
            rv, _ = cl.req(OP["CLONE_TARGET_INIT"], u64(s1) +
                           bytes_field(bytes(bad)) + bytes_field(b"") +
                           u64(0) + u64(CAP))
            assert rv != CKR_OK, "TWC byte %d altered accepted" % i
        part1 = cl.ok(OP["CLONE_TARGET_INIT"], u64(s1) + bytes_field(twc) +
                      bytes_field(b"") + u64(0) + u64(CAP))[0][1]
        rv, _ = cl.req(OP["CLONE_AS_SOURCE"], u64(s0) + u64(0) + u64(key) +
                       bytes_field(part1[:-1]) + u64(0) + u64(CAP))
        assert rv != CKR_OK, "Part1 cut short accepted"
        rv, _ = cl.req(OP["CLONE_AS_TARGET"], u64(s1) + bytes_field(b"") +
                       bytes_field(b"\0" * 200) + u64(0) + u64(0) + u64(0))
        assert rv != CKR_OK, "a made-up Part2 accepted"

    cl.close()


def card_info_works():
    c = Conn(SOCK)
    try:
        c.send(message(OP["GET_CARD_INFO"], tag=77))
        hdr, payload = c.recv_msg()
        expect_status(hdr, ST["OK"], tag=77, opcode=OP["GET_CARD_INFO"])
        assert hdr["rv"] == CKR_OK, "rv %#x" % hdr["rv"]
        ftype, _, n = struct.unpack_from("<HHI", payload)
        assert ftype == FT_BYTES and n == CARD_INFO_LEN, \
            "card info field type %d len %d" % (ftype, n)
        assert len(payload) == 8 + n, "payload length %d" % len(payload)
    finally:
        c.close()


def main():
    global SOCK
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    SOCK = sys.argv[1]
    run_checks()
    passed = sum(results)
    failed = len(results) - passed
    print("summary: %d of %d checks passed" % (passed, passed + failed))
    return 1 if failed else 0


SOCK = None

if __name__ == "__main__":
    sys.exit(main())
