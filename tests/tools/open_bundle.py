#!/usr/bin/env python3
"""Opens a pbs-keystore export bundle with standard tools only.

The recipe of docs/export-format.md, as a program: Python's hashlib.scrypt
and the `cryptography` package (Debian: python3-cryptography). It writes,
into OUTDIR, each key's file `encryption-keys/<id>.enc` exactly as exported
and `encryption-keys.cfg` with the keys' sections as a PBS host stores them
(path under /etc/proxmox-backup/encryption-keys/). Nothing of this software
is needed. tests/key_export.rs runs it on bundles our code made.

usage: open_bundle.py BUNDLE OUTDIR --passphrase-file FILE
       open_bundle.py BUNDLE OUTDIR --private-key PEM [--private-key-passphrase-file FILE]
"""

import argparse
import os
import re
import sys

# --- the recipe (docs/export-format.md) ---
import base64
import hashlib
import json

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def open_bundle(data, passphrase=None, private_key=None):
    """The header and payload of a bundle (bytes); passphrase is bytes,
    private_key an RSA key from serialization.load_pem_private_key."""
    header_bytes, _, body = data.partition(b"\n")
    header = json.loads(header_bytes)
    if header["format"] != "pbs-keystore-export" or header["version"] != 1:
        raise ValueError("not a version 1 export bundle")
    b64 = base64.b64decode
    data_key = None
    for r in header["recipients"]:
        try:
            if r["type"] == "scrypt" and passphrase is not None:
                kek = hashlib.scrypt(passphrase, salt=b64(r["salt"]), n=r["n"],
                                     r=r["r"], p=r["p"], maxmem=1 << 30, dklen=32)
                data_key = AESGCM(kek).decrypt(b64(r["nonce"]), b64(r["wrapped-key"]), None)
            elif r["type"] == "rsa-oaep-sha256" and private_key is not None:
                spki = private_key.public_key().public_bytes(
                    Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
                if hashlib.sha256(spki).hexdigest() == r["key-id"]:
                    data_key = private_key.decrypt(b64(r["wrapped-key"]), padding.OAEP(
                        mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                        label=None))
        except (InvalidTag, ValueError):
            pass  # not this recipient
        if data_key is not None:
            break
    if data_key is None:
        raise ValueError("wrong passphrase or RSA key")
    payload = AESGCM(data_key).decrypt(b64(header["payload"]["nonce"]),
                                       b64(body.rstrip(b"\n"), validate=True),
                                       header_bytes)  # the header is the AAD
    return header, json.loads(payload)
# --- end of the recipe ---


def config_section(config):
    """A key's encryption-keys.cfg section, as upstream writes it."""
    lines = ["sync-key: " + config["id"]]
    for name in sorted(config):
        if name == "id":
            continue
        value = config[name]
        if name == "path":
            value = "/etc/proxmox-backup/encryption-keys/" + config["id"] + ".enc"
        lines.append("\t%s %s" % (name, value))
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("outdir")
    parser.add_argument("--passphrase-file")
    parser.add_argument("--private-key")
    parser.add_argument("--private-key-passphrase-file")
    args = parser.parse_args()

    def read(path):
        with open(path, "rb") as f:
            return f.read()

    passphrase = private_key = None
    if args.passphrase_file:
        passphrase = read(args.passphrase_file).rstrip(b"\n")
    if args.private_key:
        from cryptography.hazmat.primitives import serialization
        pem_passphrase = None
        if args.private_key_passphrase_file:
            pem_passphrase = read(args.private_key_passphrase_file).rstrip(b"\n")
        private_key = serialization.load_pem_private_key(
            read(args.private_key), password=pem_passphrase)
    if passphrase is None and private_key is None:
        parser.error("give --passphrase-file or --private-key")

    header, payload = open_bundle(read(args.bundle), passphrase, private_key)

    key_dir = os.path.join(args.outdir, "encryption-keys")
    os.makedirs(key_dir, mode=0o700, exist_ok=True)
    sections = []
    for info, entry in zip(header["keys"], payload["keys"]):
        key_id = entry["config"]["id"]
        # the id becomes a file name: check it as the keystore does
        if key_id != info["id"] or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._\-]{2,31}", key_id):
            raise ValueError("bad key id in bundle")
        path = os.path.join(key_dir, key_id + ".enc")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(entry["key-file"])
        sections.append(config_section(entry["config"]))
        print("%s %s" % (key_id, info["fingerprint"]))
    cfg = os.path.join(args.outdir, "encryption-keys.cfg")
    fd = os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
