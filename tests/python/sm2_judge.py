"""An outside judge of ecca's SM2 signatures: PyPI gmssl (pure Python SM2/SM3).

Reads a JSON list on stdin, each item {"what", "point", "data", "sig"} (hex: the signer's
uncompressed public key 04||x||y, the signed bytes, the DER signature), checks each with
gmssl's verify_with_sm3 (SM3 over Z || data, Z with the GM/T 0009 default ID
1234567812345678), prints one line per item and exits 1 if any fails.
"""
import json
import sys

from gmssl import sm2


def verify(point_hex: str, data: bytes, sig_der_hex: str) -> bool:
    xy = point_hex[2:] if point_hex.startswith("04") and len(point_hex) == 130 else point_hex
    judge = sm2.CryptSM2(private_key=None, public_key=xy, asn1=True)
    # gmssl 3.2.2 strips a leading "04" with lstrip("04"), which also eats leading 0/4 digits
    # of x: set the key as given.
    judge.public_key = xy
    return bool(judge.verify_with_sm3(sig_der_hex, data))


def main() -> int:
    items = json.load(sys.stdin)
    failed = 0
    for item in items:
        ok = verify(item["point"], bytes.fromhex(item["data"]), item["sig"])
        print(("ok   " if ok else "FAIL ") + item["what"])
        failed += 0 if ok else 1
    print(f"{len(items) - failed}/{len(items)} SM2 signatures verified by gmssl")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
