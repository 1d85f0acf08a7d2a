"""An outside judge of ecca's SM2EnvelopedKey (GM/T 0009 §7.4): PyPI gmssl opens it.

Usage: sm2_envelope_judge.py ENVELOPE.der SIGNING.key EXPECTED_POINT_HEX

Reads the subscriber's SM2 signing key (PKCS#8 PEM, as `ecca keygen --alg sm2` or OpenSSL
write it), decrypts the SM2Cipher (C1C3C2) with gmssl, checks its hash C3 = SM3(x2 || M ||
y2) itself (gmssl computes but does not check it), decrypts the private key with gmssl's
SM4-ECB, and checks that the private key's public point equals both the envelope's
Sm2PublicKey and EXPECTED_POINT_HEX (the encryption certificate's key, 04||x||y).
Prints what it checked; exits 0 only if everything held.
"""
import base64
import sys

from gmssl import sm2, sm3, sm4

SM4_ECB = "1.2.156.10197.1.104.1"


def tlv(data: bytes, pos: int = 0):
    """One DER element at pos: (tag, content, next position)."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    return tag, data[pos:pos + length], pos + length


def children(content: bytes):
    out, pos = [], 0
    while pos < len(content):
        tag, value, pos = tlv(content, pos)
        out.append((tag, value))
    return out


def oid(value: bytes) -> str:
    arcs = [value[0] // 40, value[0] % 40]
    n = 0
    for b in value[1:]:
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(n)
            n = 0
    return ".".join(map(str, arcs))


def pem_der(text: str) -> bytes:
    body = [l for l in text.splitlines() if l and not l.startswith("-----")]
    return base64.b64decode("".join(body))


def sm2_scalar(pkcs8: bytes) -> int:
    """PrivateKeyInfo { version, algorithm, OCTET STRING ECPrivateKey { 1, OCTET STRING d } }."""
    _, info, _ = tlv(pkcs8)
    parts = children(info)
    _, ec, _ = tlv(parts[2][1])
    return int.from_bytes(children(ec)[1][1], "big")


def main() -> int:
    envelope_path, key_path, expected = sys.argv[1:4]
    envelope = open(envelope_path, "rb").read()
    d = sm2_scalar(pem_der(open(key_path).read()))
    d_hex = "%064x" % d

    tag, body, _ = tlv(envelope)
    assert tag == 0x30, "SM2EnvelopedKey is a SEQUENCE"
    alg, cipher, public, encrypted = children(body)
    algorithm = oid(children(alg[1])[0][1])
    print(f"symAlgID {algorithm}")
    ok = algorithm == SM4_ECB

    # SM2Cipher ::= SEQUENCE { XCoordinate INTEGER, YCoordinate INTEGER, HASH OCTET STRING,
    # CipherText OCTET STRING }: to gmssl's raw C1 || C3 || C2 (mode 1).
    x, y, c3, c2 = (v for _, v in children(cipher[1]))
    coord = lambda v: int.from_bytes(v, "big").to_bytes(32, "big")
    raw = coord(x) + coord(y) + c3 + c2
    judge = sm2.CryptSM2(private_key=d_hex, public_key="", mode=1)
    sm4_key = judge.decrypt(raw)
    xy = judge._kg(d, (coord(x) + coord(y)).hex())
    u = sm3.sm3_hash(list(bytes.fromhex(xy[:64]) + sm4_key + bytes.fromhex(xy[64:])))
    hash_ok = u == c3.hex()
    print(f"SM2 decryption of the SM4 key by gmssl: {len(sm4_key)} bytes, C3 {'matches' if hash_ok else 'DIFFERS'}")
    ok = ok and hash_ok and len(sm4_key) == 16

    # BIT STRINGs: a leading unused-bits byte.
    envelope_point = public[1][1:].hex()
    cipher_key = encrypted[1][1:]
    crypt = sm4.CryptSM4(padding_mode=None)
    crypt.set_key(sm4_key, sm4.SM4_DECRYPT)
    private = crypt.crypt_ecb(cipher_key)
    k = int.from_bytes(private[-32:], "big")
    point = "04" + judge._kg(k, sm2.default_ecc_table["g"])
    print(f"SM4-ECB decryption of the private key by gmssl: {len(private)} bytes")
    print(f"public point of the recovered key: {point}")
    same_env = point == envelope_point
    same_cert = point == expected.lower()
    print(f"equals the envelope's Sm2PublicKey: {same_env}")
    print(f"equals the encryption certificate's key: {same_cert}")
    ok = ok and same_env and same_cert and 0 < k
    print("SM2EnvelopedKey opened by gmssl" if ok else "SM2EnvelopedKey REFUSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
