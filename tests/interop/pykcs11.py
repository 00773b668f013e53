#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Interoperability with PyKCS11 (Debian's python3-pykcs11).

Needs PHSM_MODULE (the library) and PHSM_FW_SOCKETS (a fresh phsm-fw);
tests/interop/pykcs11.sh provides both.  Initialises the first slot's
token, then runs a unittest suite over it.  Prints one PASS:/FAIL: line
per test for tests/run.sh.  Run it with /usr/bin/python3: the pyenv
python earlier on PATH does not see Debian's PyKCS11.
"""

import hashlib
import os
import sys
import unittest

import PyKCS11
from PyKCS11 import LowLevel as LL

SO_PIN = "87654321"
PIN = "12345678"
LABEL = "phsm-py"
# DER of the OID prime256v1
P256 = bytes([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07])

lib = None
slot = None


def setUpModule():
    global lib, slot
    lib = PyKCS11.PyKCS11Lib()
    lib.load(os.environ["PHSM_MODULE"])
    slot = lib.getSlotList()[0]
    # PyKCS11 passes the label as it is: pad it to the 32 bytes PKCS#11 reads.
    lib.initToken(slot, SO_PIN, LABEL.ljust(32))
    s = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
    s.login(SO_PIN, user_type=PyKCS11.CKU_SO)
    s.initPin(PIN)
    s.logout()
    s.closeSession()


class Login(unittest.TestCase):
    """Runs before Token logs in: a login holds for the whole application."""

    def test_wrong_pin(self):
        s = lib.openSession(slot)
        try:
            with self.assertRaises(PyKCS11.PyKCS11Error) as cm:
                s.login("00000000")
            self.assertEqual(cm.exception.value, PyKCS11.CKR_PIN_INCORRECT)
        finally:
            s.closeSession()

    def test_login_logout(self):
        s = lib.openSession(slot)
        try:
            self.assertEqual(s.getSessionInfo().state,
                             PyKCS11.CKS_RO_PUBLIC_SESSION)
            s.login(PIN)
            self.assertEqual(s.getSessionInfo().state,
                             PyKCS11.CKS_RO_USER_FUNCTIONS)
            s.logout()
            self.assertEqual(s.getSessionInfo().state,
                             PyKCS11.CKS_RO_PUBLIC_SESSION)
        finally:
            s.closeSession()


class Token(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = lib.openSession(
            slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
        cls.s.login(PIN)

    @classmethod
    def tearDownClass(cls):
        cls.s.logout()
        cls.s.closeSession()

    def rsa_pair(self, label):
        pub = [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY),
            (PyKCS11.CKA_TOKEN, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_MODULUS_BITS, 2048),
            (PyKCS11.CKA_PUBLIC_EXPONENT, (0x01, 0x00, 0x01)),
            (PyKCS11.CKA_VERIFY, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_ENCRYPT, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_LABEL, label),
        ]
        priv = [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
            (PyKCS11.CKA_TOKEN, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_PRIVATE, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_SENSITIVE, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_SIGN, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_DECRYPT, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_LABEL, label),
        ]
        return self.s.generateKeyPair(pub, priv)

    def aes_key(self, label):
        return self.s.generateKey([
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY),
            (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_AES),
            (PyKCS11.CKA_VALUE_LEN, 32),
            (PyKCS11.CKA_TOKEN, PyKCS11.CK_FALSE),
            (PyKCS11.CKA_ENCRYPT, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_DECRYPT, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_SENSITIVE, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_LABEL, label),
        ], PyKCS11.Mechanism(PyKCS11.CKM_AES_KEY_GEN))

    def test_library_info(self):
        info = lib.getInfo()
        self.assertEqual(info.cryptokiVersion[0], 3)
        self.assertTrue(info.manufacturerID.strip())

    def test_token_info(self):
        ti = lib.getTokenInfo(slot)
        self.assertEqual(ti.label.strip(), LABEL)
        self.assertTrue(ti.flags & PyKCS11.CKF_TOKEN_INITIALIZED)
        self.assertTrue(ti.flags & PyKCS11.CKF_USER_PIN_INITIALIZED)
        self.assertTrue(ti.flags & PyKCS11.CKF_LOGIN_REQUIRED)
        self.assertGreaterEqual(ti.ulMinPinLen, 4)
        self.assertLessEqual(ti.ulMaxPinLen, 64)

    def test_mechanism_list(self):
        mechs = lib.getMechanismList(slot)
        for m in ("CKM_RSA_PKCS", "CKM_SHA256_RSA_PKCS", "CKM_ECDSA",
                  "CKM_AES_GCM", "CKM_AES_CBC_PAD", "CKM_SHA256"):
            self.assertIn(m, mechs)
        info = lib.getMechanismInfo(slot, "CKM_RSA_PKCS_KEY_PAIR_GEN")
        self.assertLessEqual(info.ulMinKeySize, 2048)
        self.assertGreaterEqual(info.ulMaxKeySize, 2048)

    def test_session_info(self):
        si = self.s.getSessionInfo()
        self.assertEqual(si.state, PyKCS11.CKS_RW_USER_FUNCTIONS)

    def test_rsa_sign_verify(self):
        pub, priv = self.rsa_pair("py-rsa")
        mech = PyKCS11.Mechanism(PyKCS11.CKM_SHA256_RSA_PKCS)
        sig = bytes(self.s.sign(priv, b"hello phsm", mech))
        self.assertEqual(len(sig), 256)
        self.assertTrue(self.s.verify(pub, b"hello phsm", sig, mech))
        self.assertFalse(self.s.verify(pub, b"hello phsn", sig, mech))

    def test_rsa_pss(self):
        pub, priv = self.rsa_pair("py-pss")
        mech = PyKCS11.RSA_PSS_Mechanism(
            PyKCS11.CKM_SHA256_RSA_PKCS_PSS, PyKCS11.CKM_SHA256,
            PyKCS11.CKG_MGF1_SHA256, 32)
        sig = bytes(self.s.sign(priv, b"pss data", mech))
        self.assertTrue(self.s.verify(pub, b"pss data", sig, mech))

    def test_rsa_oaep_encrypt_decrypt(self):
        pub, priv = self.rsa_pair("py-oaep")
        mech = PyKCS11.RSAOAEPMechanism(PyKCS11.CKM_SHA256,
                                        PyKCS11.CKG_MGF1_SHA256)
        ct = bytes(self.s.encrypt(pub, b"secret message", mech))
        self.assertEqual(len(ct), 256)
        self.assertEqual(bytes(self.s.decrypt(priv, ct, mech)),
                         b"secret message")

    def test_ec_sign_verify(self):
        pub, priv = self.s.generateKeyPair(
            [(PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY),
             (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC),
             (PyKCS11.CKA_EC_PARAMS, P256),
             (PyKCS11.CKA_VERIFY, PyKCS11.CK_TRUE),
             (PyKCS11.CKA_LABEL, "py-ec")],
            [(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
             (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC),
             (PyKCS11.CKA_SIGN, PyKCS11.CK_TRUE),
             (PyKCS11.CKA_SENSITIVE, PyKCS11.CK_TRUE),
             (PyKCS11.CKA_LABEL, "py-ec")],
            mecha=PyKCS11.MechanismECGENERATEKEYPAIR)
        digest = hashlib.sha256(b"ec data").digest()
        mech = PyKCS11.Mechanism(PyKCS11.CKM_ECDSA)
        sig = bytes(self.s.sign(priv, digest, mech))
        self.assertEqual(len(sig), 64)
        self.assertTrue(self.s.verify(pub, digest, sig, mech))
        point = self.s.getAttributeValue(pub, [PyKCS11.CKA_EC_POINT])[0]
        self.assertTrue(len(point) in (65, 67))

    def test_aes_gcm(self):
        key = self.aes_key("py-gcm")
        iv = bytes(range(12))
        mech = PyKCS11.AES_GCM_Mechanism(iv, b"header", 128)
        ct = bytes(self.s.encrypt(key, b"gcm plaintext", mech))
        self.assertEqual(len(ct), 13 + 16)
        mech = PyKCS11.AES_GCM_Mechanism(iv, b"header", 128)
        self.assertEqual(bytes(self.s.decrypt(key, ct, mech)), b"gcm plaintext")
        bad = ct[:-1] + bytes([ct[-1] ^ 1])
        mech = PyKCS11.AES_GCM_Mechanism(iv, b"header", 128)
        with self.assertRaises(PyKCS11.PyKCS11Error):
            self.s.decrypt(key, bad, mech)

    def test_aes_cbc_pad(self):
        key = self.aes_key("py-cbc")
        mech = PyKCS11.Mechanism(PyKCS11.CKM_AES_CBC_PAD, bytes(16))
        data = os.urandom(100)
        ct = bytes(self.s.encrypt(key, data, mech))
        self.assertEqual(len(ct), 112)
        self.assertEqual(bytes(self.s.decrypt(key, ct, mech)), data)

    def test_digest(self):
        data = os.urandom(3000)
        d = bytes(self.s.digest(data, PyKCS11.Mechanism(PyKCS11.CKM_SHA256)))
        self.assertEqual(d, hashlib.sha256(data).digest())

    def test_random(self):
        r = self.s.generateRandom(48)
        self.assertEqual(len(r), 48)

    def test_find_objects(self):
        self.rsa_pair("py-find")
        found = self.s.findObjects([(PyKCS11.CKA_LABEL, "py-find")])
        self.assertEqual(len(found), 2)
        privs = self.s.findObjects([(PyKCS11.CKA_LABEL, "py-find"),
                                    (PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY)])
        self.assertEqual(len(privs), 1)
        self.assertEqual(self.s.findObjects([(PyKCS11.CKA_LABEL, "nope")]), [])

    def test_get_attribute_value(self):
        pub, priv = self.rsa_pair("py-attrs")
        mod, bits = self.s.getAttributeValue(
            pub, [PyKCS11.CKA_MODULUS, PyKCS11.CKA_MODULUS_BITS])
        self.assertEqual(len(mod), 256)
        self.assertEqual(bits, 2048)
        label, sensitive, exp = self.s.getAttributeValue(
            priv, [PyKCS11.CKA_LABEL, PyKCS11.CKA_SENSITIVE,
                   PyKCS11.CKA_PRIVATE_EXPONENT])
        self.assertEqual(label, "py-attrs")
        self.assertTrue(sensitive)
        # A sensitive value must not come out: PyKCS11 gives None.
        self.assertIsNone(exp)

    def test_sensitive_secret_key(self):
        key = self.aes_key("py-secret")
        # The raw call, to see the CK_RV PyKCS11 would hide behind None.
        tmpl = LL.ckattrlist(1)
        tmpl[0].SetType(PyKCS11.CKA_VALUE)
        rv = self.s.lib.C_GetAttributeValue(self.s.session, key, tmpl)
        self.assertEqual(rv, PyKCS11.CKR_ATTRIBUTE_SENSITIVE)
        self.assertIsNone(self.s.getAttributeValue(key, [PyKCS11.CKA_VALUE])[0])

    def test_data_object_create_destroy(self):
        obj = self.s.createObject([
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_DATA),
            (PyKCS11.CKA_TOKEN, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_LABEL, "py-data"),
            (PyKCS11.CKA_VALUE, b"payload bytes"),
        ])
        value = self.s.getAttributeValue(obj, [PyKCS11.CKA_VALUE])[0]
        self.assertEqual(bytes(value), b"payload bytes")
        self.s.destroyObject(obj)
        self.assertEqual(self.s.findObjects([(PyKCS11.CKA_LABEL, "py-data")]), [])

class Result(unittest.TextTestResult):
    """Also print the PASS:/FAIL: lines tests/run.sh counts."""

    def addSuccess(self, test):
        super().addSuccess(test)
        print("PASS: %s" % test.id(), flush=True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        print("FAIL: %s" % test.id(), flush=True)

    def addError(self, test, err):
        super().addError(test, err)
        print("FAIL: %s (error)" % test.id(), flush=True)


if __name__ == "__main__":
    runner = unittest.TextTestRunner(resultclass=Result, verbosity=2,
                                     stream=sys.stdout)
    result = runner.run(unittest.defaultTestLoader.loadTestsFromModule(
        sys.modules[__name__]))
    sys.exit(0 if result.wasSuccessful() and result.testsRun else 1)
