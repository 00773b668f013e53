#!/bin/bash
# SPDX-License-Identifier: MIT
# phsmctl, the admin tool: `show` and `identity` against a running
# phsm-fw (--socket), `list` against hand-made sysfs trees (--sysfs: no
# card is needed), the JSON output read back with python, and the exit
# statuses of the error cases.  Every step is one check.
#
# Usage: tests/interop/phsmctl.sh   (PHSM_FW, PHSM_MODULE: tests/lib.sh;
#        PHSMCTL: the tool, default build/bin/phsmctl)
set -uo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

PHSMCTL=${PHSMCTL:-$PHSM_TOP/build/bin/phsmctl}
W=$PHSM_TMP
SO_PIN=87654321

ctl() {
	"$PHSMCTL" "$@"
}

# expect_exit STATUS PATTERN ARGS...: phsmctl exits with STATUS and its
# output (stdout and stderr) matches PATTERN.
expect_exit() {
	local want=$1 pattern=$2 rc=0
	shift 2
	ctl "$@" >"$W/out" 2>&1 || rc=$?
	cat "$W/out"
	if [ "$rc" -ne "$want" ]; then
		echo "exit status $rc, wanted $want"
		return 1
	fi
	grep -qE -- "$pattern" "$W/out"
}

# json_check FILE PYTHON-EXPRESSION: the expression, over the parsed
# document `d`, is true.
json_check() {
	"$PHSM_PY" - "$1" "$2" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
ok = eval("(" + sys.argv[2] + ")", {"d": d})
print(json.dumps(d, indent=1)[:2000])
sys.exit(0 if ok else 1)
EOF
}

# ---- sysfs trees for `list` ---------------------------------------------

# pci_function ROOT ADDR VENDOR DEVICE [DRIVER]: a PCI function as Linux's
# sysfs shows it: ID files, resources (BAR0 and BAR2, 4 KiB each), 256
# bytes of config space with a PCIe capability (link 2.5GT/s x1), and
# the driver link.
pci_function() {
	local root=$1 addr=$2 vendor=$3 device=$4 driver=${5:-}
	local d=$root/bus/pci/devices/$addr
	mkdir -p "$d"
	echo "0x$vendor" >"$d/vendor"
	echo "0x$device" >"$d/device"
	echo 0x108000 >"$d/class"
	echo 0 >"$d/irq"
	{
		echo "0x00000000fe800000 0x00000000fe800fff 0x0000000000040200"
		echo "0x0000000000000000 0x0000000000000000 0x0000000000000000"
		echo "0x00000000fe801000 0x00000000fe801fff 0x0000000000040200"
		printf '0x0000000000000000 0x0000000000000000 0x0000000000000000\n%.0s' \
			1 2 3 4
	} >"$d/resource"
	"$PHSM_PY" - "$d/config" "$vendor" "$device" <<'EOF'
import struct, sys
c = bytearray(256)
struct.pack_into('<HHHH', c, 0, int(sys.argv[2], 16), int(sys.argv[3], 16),
                 0x0006, 0x0010)             # command; status: capability list
c[0x0a], c[0x0b] = 0x80, 0x10                 # class 10:80
struct.pack_into('<I', c, 0x10, 0xfe800000)   # BAR0
struct.pack_into('<I', c, 0x18, 0xfe801000)   # BAR2
c[0x34] = 0x40                                # first capability
c[0x40], c[0x41] = 0x10, 0                    # PCI Express, last
struct.pack_into('<H', c, 0x42, 0x0002)       # endpoint
struct.pack_into('<H', c, 0x52, 0x0011)       # link status: 2.5GT/s x1
open(sys.argv[1], 'wb').write(c)
EOF
	if [ -n "$driver" ]; then
		mkdir -p "$root/bus/pci/drivers/$driver"
		ln -s "../../drivers/$driver" "$d/driver"
	fi
}

# phsm_node ROOT N ADDR: the driver's class device phsmN for ADDR.
phsm_node() {
	local c=$1/class/phsm/phsm$2
	mkdir -p "$c"
	ln -s "../../../bus/pci/devices/$3" "$c/device"
	echo "SER-$2" >"$c/serial"
	echo 0.1 >"$c/firmware_version"
	echo 64 >"$c/queue_depth"
	echo 1234 >"$c/commands"
	echo 2 >"$c/errors"
	echo 1 >"$c/timeouts"
	echo live >"$c/state"
}

NOPCI=$W/sys-nopci			# a container: no PCI bus at all
mkdir -p "$NOPCI"
OTHER=$W/sys-other			# a bus without phsm cards
pci_function "$OTHER" 0000:00:1f.0 8086 2918
CARDS=$W/sys-cards			# two cards, one bound, and a stranger
pci_function "$CARDS" 0000:00:1f.0 8086 2918
pci_function "$CARDS" 0000:01:00.0 1af4 10f0 phsm
pci_function "$CARDS" 0000:02:00.0 1af4 10f0
phsm_node "$CARDS" 0 0000:01:00.0

list_json_ok() {
	ctl --sysfs "$CARDS" --json list >"$W/list.json" || return 1
	json_check "$W/list.json" '
len(d["cards"]) == 2 and
d["cards"][0]["pci_address"] == "0000:01:00.0" and
d["cards"][0]["vendor"] == "1af4" and d["cards"][0]["device"] == "10f0" and
d["cards"][0]["link_speed"] == "2.5GT/s" and d["cards"][0]["link_width"] == 1 and
[(b["index"], b["type"], b["address"], b["size"]) for b in d["cards"][0]["bars"]]
    == [(0, "mem", 0xfe800000, 4096), (2, "mem", 0xfe801000, 4096)] and
d["cards"][0]["driver"] == "phsm" and
d["cards"][0]["device_node"] == "/dev/phsm0" and
d["cards"][0]["serial"] == "SER-0" and
d["cards"][0]["firmware_version"] == "0.1" and
d["cards"][0]["queue_depth"] == 64 and d["cards"][0]["commands"] == 1234 and
d["cards"][0]["errors"] == 2 and d["cards"][0]["timeouts"] == 1 and
d["cards"][0]["state"] == "live" and
d["cards"][1]["pci_address"] == "0000:02:00.0" and
d["cards"][1]["driver"] is None and d["cards"][1]["device_node"] is None and
d["cards"][1]["state"] is None'
}

list_json_empty() {
	ctl --sysfs "$OTHER" --json list >"$W/empty.json" &&
		json_check "$W/empty.json" 'd == {"cards": []}'
}

step "list: no PCI bus, no cards" expect_exit 0 "^no phsm cards found$" \
	--sysfs "$NOPCI" list
step "list: other devices only, no cards" expect_exit 0 \
	"^no phsm cards found$" --sysfs "$OTHER" list
step "list --json: no cards is an empty list" list_json_empty
step "list shows the bound card with the driver's attributes" expect_exit 0 \
	"^phsm0  0000:01:00.0  1af4:10f0  link 2.5GT/s x1  driver phsm" \
	--sysfs "$CARDS" list
step "list shows the unbound card" expect_exit 0 \
	"^-  0000:02:00.0  1af4:10f0 .*driver \(none\)" --sysfs "$CARDS" list
step "list --json fields" list_json_ok
step "list on this host's own sysfs: exit 0" expect_exit 0 \
	"^no phsm cards found$|^(phsm[0-9]+|-)  [0-9a-f]{4}:" list

# ---- show, against a daemon -----------------------------------------------

show_json() {
	ctl --json show --socket "$FW_SOCK" >"$W/show.json" &&
		json_check "$W/show.json" "$1"
}

# The serial phsmctl shows is the one the library gives its slots.
same_serial_as_library() {
	local serial
	ctl --json show --socket "$FW_SOCK" >"$W/show.json" || return 1
	serial=$("$PHSM_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["serial"])' \
		"$W/show.json") || return 1
	echo "serial: $serial"
	[ -n "$serial" ] &&
		PHSM_FW_SOCKETS=$FW_SOCK pkcs11-tool --module "$PHSM_MODULE" -L |
		grep -F "phsm card $serial partition 0"
}

fw_start phsmctl --partitions 3 || exit 1

step "show --socket: the card and its partitions" expect_exit 0 \
	"^partition 2$" show --socket "$FW_SOCK"
step "show --socket: partitions start uninitialised" expect_exit 0 \
	"initialised +no" show --socket "$FW_SOCK"
step "show --json: three uninitialised partitions" show_json '
d["socket"].endswith(".sock") and d["model"] != "" and
[p["index"] for p in d["partitions"]] == [0, 1, 2] and
all(not p["initialized"] and p["label"] is None for p in d["partitions"])'
step "init partition 1 with pkcs11-tool" env PHSM_FW_SOCKETS="$FW_SOCK" \
	pkcs11-tool --module "$PHSM_MODULE" --slot 1 --init-token \
	--label 'admin "quoted" label' --so-pin "$SO_PIN"
step "show --json: the label and flags of partition 1" show_json '
d["partitions"][1]["initialized"] and
d["partitions"][1]["label"] == "admin \"quoted\" label" and
"TOKEN_INITIALIZED" in d["partitions"][1]["flag_names"] and
not d["partitions"][0]["initialized"] and d["partitions"][1]["sessions"] == 0'
step "show: the label in plain text" expect_exit 0 \
	'label +admin "quoted" label' show --socket "$FW_SOCK"
step "show: the serial is the library's" same_serial_as_library

# ---- identity -----------------------------------------------------------------

# The two PEM blocks of `identity`: the device certificate, then the root.
identity_verifies() {
	ctl identity --socket "$FW_SOCK" >"$W/id.txt" || return 1
	awk -v dir="$W" '/BEGIN CERTIFICATE/ { n++ }
		n == 1 { print > (dir "/device.pem") }
		n == 2 { print > (dir "/root.pem") }' "$W/id.txt"
	openssl verify -CAfile "$W/root.pem" "$W/device.pem" &&
		cmp -s "$W/root.pem" <(openssl x509 -in "$PHSM_MFG/root.pem")
}
identity_json() {
	ctl --json identity --socket "$FW_SOCK" >"$W/id.json" &&
		json_check "$W/id.json" "$1"
}

step "identity --socket: the device certificate and the root" expect_exit 0 \
	"^root certificate$" identity --socket "$FW_SOCK"
step "identity: the chain verifies with openssl, under the test root" \
	identity_verifies
step "identity --json: issuer, PEM and fingerprint" identity_json '
d["provisioned"] and
d["device_certificate"]["issuer"] == "CN=phsm simulated manufacturer root" and
d["device_certificate"]["pem"].startswith("-----BEGIN CERTIFICATE-----") and
len(d["root_certificate"]["sha256"]) == 64'

# ---- errors -----------------------------------------------------------------

DEVS=$W/dev
mkdir -p "$DEVS"
ln -s /dev/null "$DEVS/phsm0"

unknown_card() {
	PHSM_DEV_DIR=$DEVS expect_exit 1 "phsm7: no such card" show 7
}
not_a_card() {
	PHSM_DEV_DIR=$DEVS expect_exit 1 "phsm0: not a phsm card" show 0
}
step "show of an unknown card: exit 1, no such card" unknown_card
step "show of a node that is not a phsm card: exit 1" not_a_card
step "show of an unreachable socket: exit 1" expect_exit 1 "cannot connect" \
	show --socket "$W/nobody.sock"
step "show of a bad card number: exit 1" expect_exit 1 "not a card number" \
	show x1
step "no command: exit 2" expect_exit 2 "^usage:"
step "show without a card: exit 2" expect_exit 2 "bad command line" show
step "list with an argument: exit 2" expect_exit 2 "bad command line" list 0
step "unknown option: exit 2" expect_exit 2 "unrecognized option" --bogus list
step "--help: exit 0" expect_exit 0 "^usage: phsmctl" --help

fw_stop_check "$FW_PID" "$FW_LOG"

# A card started without a manufacturer has no identity: said, exit 0.
FW_MFG= fw_start noidentity || exit 1
step "identity of a card without one: exit 0, says so" expect_exit 0 \
	"has no cloning identity" identity --socket "$FW_SOCK"
step "identity --json of a card without one" identity_json \
	'd["provisioned"] is False and "device_certificate" not in d'
step "identity without a card: exit 2" expect_exit 2 "bad command line" \
	identity
fw_stop_check "$FW_PID" "$FW_LOG"
finish
