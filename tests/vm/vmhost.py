#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Host side of the VM tests: drive QEMU for the guest, then count.

  vmhost.py monitor --log LOG --qmp SOCK --pid PID --timeout SECONDS
                    [--device ID=QOM-DEVICE-ARGS]...
      Follow the guest's serial console in LOG.  For each line
      "PHSM-VM: host ACTION ARGS" perform the action through QMP:
          set ID PROPERTY VALUE   qom-set /machine/peripheral/ID PROPERTY
          device_del ID           device_del ID (and wait for DEVICE_DELETED)
          device_add ID           device_add with ID's --device arguments
      and log the result as a "vmhost:" line on stderr.  Returns 0 when the
      guest prints "PHSM-VM: done", 2 if QEMU (PID) ended before, 124 on
      timeout.
  vmhost.py results --log LOG --kernel NAME
      Print every test of the run by name and the counts; the last line
      is "vm/NAME: N passed, N failed".  Returns 1 if anything failed.

The guest's markers are documented in tests/vm/guest-init.sh.
"""

import argparse
import json
import os
import re
import socket
import sys
import time

MARK = re.compile(r"PHSM-VM: (.*?)\s*$")


def log(msg):
    print(f"vmhost: {msg}", file=sys.stderr, flush=True)


class Qmp:
    """A minimal QMP client: one command at a time, events kept aside."""

    def __init__(self, path, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.events = []
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("QMP connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise RuntimeError(f"{name}: {reply['error'].get('desc')}")
            return reply.get("return")

    def wait_event(self, name, timeout, device=None):
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events:
                if ev["event"] == name and (
                        device is None or
                        ev.get("data", {}).get("device") == device):
                    self.events.remove(ev)
                    return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                self.events.append(self._read())
            except socket.timeout:
                return False
            finally:
                self.sock.settimeout(30.0)


def parse_value(text):
    if text in ("true", "on"):
        return True
    if text in ("false", "off"):
        return False
    try:
        return int(text, 0)
    except ValueError:
        return text


def perform(qmp, devices, words):
    """Carry out one host request from the guest."""
    action, args = words[0], words[1:]
    if action == "set" and len(args) == 3:
        qmp.cmd("qom-set", path=f"/machine/peripheral/{args[0]}",
                property=args[1], value=parse_value(args[2]))
        return f"qom-set {args[0]}.{args[1]} = {args[2]}"
    if action == "device_del" and len(args) == 1:
        qmp.cmd("device_del", id=args[0])
        # Finished once the guest has let go of the slot.
        if not qmp.wait_event("DEVICE_DELETED", 30, device=args[0]):
            return f"device_del {args[0]}: no DEVICE_DELETED within 30 s"
        return f"device_del {args[0]}: deleted"
    if action == "device_add" and len(args) == 1 and args[0] in devices:
        qmp.cmd("device_add", **devices[args[0]])
        return f"device_add {args[0]}"
    raise RuntimeError(f"unknown request {' '.join(words)!r}")


def device_args(spec):
    """ID=driver=phsm,bus=rp1,... -> (ID, {"driver": "phsm", ...})."""
    ident, _, rest = spec.partition("=")
    args = {}
    for item in rest.split(","):
        key, _, val = item.partition("=")
        args[key] = val
    args["id"] = ident
    return ident, args


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not running any more.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def monitor(opts):
    devices = dict(device_args(d) for d in opts.device)
    deadline = time.monotonic() + opts.timeout
    qmp = None
    pos = 0
    pending = ""
    while True:
        if time.monotonic() > deadline:
            log(f"timed out after {opts.timeout} s")
            return 124
        try:
            with open(opts.log, "rb") as f:
                f.seek(pos)
                data = f.read()
        except FileNotFoundError:
            data = b""
        pos += len(data)
        pending += data.decode("utf-8", "replace")
        *lines, pending = pending.split("\n")
        for line in lines:
            m = MARK.search(line)
            if not m:
                continue
            words = m.group(1).split()
            if words[:1] == ["done"]:
                return 0
            if words[:1] != ["host"] or len(words) < 2:
                continue
            try:
                if qmp is None:
                    qmp = Qmp(opts.qmp)
                log(perform(qmp, devices, words[1:]))
            except (OSError, RuntimeError, ConnectionError) as e:
                log(f"request {' '.join(words[1:])!r} failed: {e}")
        if not data:
            if not alive(opts.pid):
                log("QEMU ended before the guest was done")
                return 2
            time.sleep(0.1)


# "ok 3 fixture.name", "not ok 4 fixture.name", and for a skip in the
# 6.1 harness "ok 5 # SKIP reason" (the name is on the RUN line before).
TAP = re.compile(r"^(not ok|ok) (\d+)(?: (.*?))??(?:\s*#\s*(SKIP|XFAIL|TODO)\b(.*))?$")
TAP_RUN = re.compile(r"^#\s+RUN\s+(\S+) \.\.\.")
CMOCKA_RUN = re.compile(r"^\[ RUN +\] (\S+)\s*$")
CMOCKA_END = re.compile(r"^\[ *(OK|FAILED|SKIPPED|ERROR) *\] (\S+)\s*$")


class Counter:
    """Totals of one kernel's run, and of the program being read."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.passed = self.failed = 0
        self.section = None     # (name, kind) of the program running
        self.seen = self.bad = 0
        self.running = None     # the test between RUN and its end

    def result(self, ok, name, note=""):
        self.seen += 1
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            self.bad += 1
        print(f"  {'PASS' if ok else 'FAIL'}  vm/{self.kernel}/{name}{note}")

    def begin(self, name, kind):
        self.section = (name, kind)
        self.seen = self.bad = 0
        self.running = None

    def end(self, rc):
        name, kind = self.section
        if kind == "check":
            self.result(rc == "0", name,
                        "" if rc == "0" else f"  (exit status {rc})")
        elif self.seen == 0:
            self.result(False, name, f"  (ran no test, exit status {rc})")
        elif rc != "0" and self.bad == 0:
            # Failed without a failing test: it crashed or timed out.
            self.result(False, name, f"  (exit status {rc})")
        self.section = None

    def line(self, line):
        name, kind = self.section
        if kind == "tap":
            r = TAP_RUN.match(line)
            if r:
                self.running = r.group(1)
                return
            t = TAP.match(line)
            if t:
                test = t.group(3) or self.running or f"test{t.group(2)}"
                # A skipped test did not test anything: not a pass.
                ok = t.group(1) == "ok" and t.group(4) != "SKIP"
                note = f"  # {t.group(4)}{t.group(5) or ''}" if t.group(4) else ""
                self.result(ok, f"{name}/{test}", note)
                self.running = None
        elif kind == "cmocka":
            r = CMOCKA_RUN.match(line)
            if r:
                self.running = r.group(1)
                return
            c = CMOCKA_END.match(line)
            # The summary repeats failed names: count each test once,
            # at the end of its own run.
            if c and c.group(2) == self.running:
                self.running = None
                self.result(c.group(1) == "OK", f"{name}/{c.group(2)}",
                            "" if c.group(1) == "OK" else f"  ({c.group(1)})")


def results(opts):
    """Count the run: every test by name, then the totals."""
    cnt = Counter(opts.kernel)
    boot = done = False
    with open(opts.log, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    for raw in text.splitlines():
        line = raw.strip("\r")
        m = MARK.search(line)
        if m:
            words = m.group(1).split()
            if not words:
                continue
            if words[0] == "boot":
                boot = True
                print(f"vm/{opts.kernel}: guest kernel {' '.join(words[1:])}")
            elif words[0] == "check" and len(words) >= 3:
                note = "  " + " ".join(words[3:]) if len(words) > 3 else ""
                cnt.result(words[1] == "pass", words[2], note)
            elif words[0] == "begin" and len(words) >= 3:
                cnt.begin(words[1], words[2])
            elif words[0] == "end" and cnt.section:
                cnt.end(words[2][3:] if len(words) > 2 else "?")
            elif words[0] == "done":
                done = True
            continue
        if cnt.section:
            cnt.line(line)
    if cnt.section:
        cnt.end("(did not end)")
    if not boot:
        cnt.result(False, "boot", "  (the guest did not boot)")
    elif not done:
        cnt.result(False, "complete", "  (the guest did not finish the plan)")
    print(f"vm/{opts.kernel}: {cnt.passed} passed, {cnt.failed} failed")
    return 1 if cnt.failed else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("monitor")
    m.add_argument("--log", required=True)
    m.add_argument("--qmp", required=True)
    m.add_argument("--pid", type=int, required=True)
    m.add_argument("--timeout", type=float, default=600)
    m.add_argument("--device", action="append", default=[])
    r = sub.add_parser("results")
    r.add_argument("--log", required=True)
    r.add_argument("--kernel", required=True)
    opts = p.parse_args()
    return monitor(opts) if opts.cmd == "monitor" else results(opts)


if __name__ == "__main__":
    sys.exit(main())
