#!/usr/bin/env python3
"""Checks a pbs-keystore audit log with standard tools only.

The recipe of docs/audit.md, as a program: Python's hashlib and json, and
the `cryptography` package (Debian: python3-cryptography) for Ed25519. It
recomputes the hash chain from line 1 and, given a checkpoint kept
elsewhere with the verifier key kept with it, checks the checkpoint's
signature and that the log still has the checkpoint's size and head at
that line. Nothing of this software is needed. tests/audit.rs runs it on
logs our code wrote, whole and tampered with.

Prints one "line N: ..." per problem, then a summary; exit status 0 if
there is none, 1 otherwise.

usage: check_audit_log.py LOG [--checkpoint FILE --verifier-key VKEY]
"""

import argparse
import sys

# --- the recipe (docs/audit.md) ---
import base64
import hashlib
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

DOMAIN = b"pbs-keystore audit v1\n"


def chain(log):
    """Recomputes the chain of a log (bytes, complete lines); returns the
    `hash` of each line and the problems, as (line number, text)."""
    hashes, problems = [], []
    prev, seq = "0" * 64, 0
    for number, line in enumerate(log.split(b"\n")[:-1], start=1):
        cut = line.rfind(b',"hash":"')
        stated = line[cut + 9:-2].decode("ascii", "replace")
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if cut < 0 or not line.endswith(b'"}') or not isinstance(record, dict):
            problems.append((number, "is not an audit record"))
            hashes.append(None)
            continue
        if hashlib.sha256(DOMAIN + line[:cut] + b"}").hexdigest() != stated:
            problems.append((number, "was changed after it was written"))
        if record.get("prev") != prev:
            problems.append((number, "does not follow the line before it"))
        if record.get("seq") != seq + 1:
            problems.append((number, f"has seq {record.get('seq')}, expected {seq + 1}"))
        prev, seq = stated, record.get("seq", seq + 1)
        hashes.append(stated)
    return hashes, problems


def note_of(text):
    """A checkpoint as a signed note, from the note itself or from its
    one-line syslog form `checkpoint ORIGIN SIZE HEAD \u2014 NAME SIGNATURE`."""
    if "\n\n" in text:
        return text
    origin, size, head, dash, name, sig = text.split("checkpoint ", 1)[1].split()
    return f"{origin}\n{size}\n{head}\n\n{dash} {name} {sig}\n"


def verify_checkpoint(note, vkey):
    """Checks a checkpoint's signature with a verifier key
    `NAME+KEYID+BASE64(0x01 || public key)`; returns (size, head in hex).
    Raises an exception if no signature line of that key verifies."""
    name, key_id, key = vkey.strip().split("+", 2)
    key = base64.b64decode(key)
    if len(key) != 33 or key[0] != 1:
        raise ValueError("not an Ed25519 verifier key")
    body, _, signatures = note.strip("\n").rpartition("\n\n")
    body += "\n"
    expected_id = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    if expected_id.hex() != key_id:
        raise ValueError("the verifier key's id does not match its key")
    for line in signatures.split("\n"):
        signer, _, sig = line.removeprefix("\u2014 ").partition(" ")
        sig = base64.b64decode(sig)
        if signer == name and sig[:4] == expected_id:
            # raises InvalidSignature if the note was altered
            Ed25519PublicKey.from_public_bytes(key[1:]).verify(sig[4:], body.encode())
            origin, size, head = body.split("\n")[:3]
            return int(size), base64.b64decode(head).hex()
    raise ValueError(f"the checkpoint is not signed by {name} (key id {key_id})")
# --- end of the recipe ---


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("log")
    parser.add_argument("--checkpoint", help="a checkpoint kept elsewhere")
    parser.add_argument("--verifier-key", help="the verifier key kept with it")
    args = parser.parse_args()
    with open(args.log, "rb") as f:
        log = f.read()
    # an incomplete last line (an append a crash interrupted) is no record
    log = log[: log.rfind(b"\n") + 1]
    hashes, problems = chain(log)
    if args.checkpoint:
        with open(args.checkpoint, encoding="utf-8") as f:
            size, head = verify_checkpoint(note_of(f.read()), args.verifier_key)
        if size > len(hashes):
            problems.append((len(hashes) + 1, f"missing (the checkpoint proves {size} "
                                               f"records, the log has {len(hashes)})"))
        elif size > 0 and hashes[size - 1] != head:
            problems.append((size, "is not the record the checkpoint ends with: the log "
                                   "was rewritten at or before it"))
    for number, text in problems:
        print(f"line {number}: {text}")
    print(f"{len(hashes)} records, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
