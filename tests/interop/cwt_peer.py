"""python-cwt as an independent COSE/CWT peer, run in its own venv (.venv-interop).

``cwt`` caps ``cbor2`` below 6 while the product's lock has ``cbor2`` 6, so it
never shares the product's venv: tests/interop/peer.py runs this script there
(a subprocess) and talks JSON over stdin/stdout. Imports only ``cwt``,
``cbor2`` and the standard library: nothing of this project.

Requests (one JSON object on stdin), byte strings as hex:
  {"op": "sign", "key_pem": ..., "alg": "ES256", "kid": hex, "claims_cbor": hex}
      -> {"token": hex}
  {"op": "verify", "key_pem": ..., "alg": "ES256", "kid": hex, "cose": hex}
      -> {"claims_cbor": hex} or {"error": "..."}
  {"op": "verify_dsc", "dsc_pem": ..., "cose": hex}   (cwt's hcert helper: key from a DSC)
      -> {"payload": hex} or {"error": "..."}
"""

import json
import sys

import cbor2
import cwt


def main() -> None:
    req = json.load(sys.stdin)
    if req["op"] == "verify_dsc":
        from cwt.helpers.hcert import load_pem_hcert_dsc

        try:
            payload = cwt.COSE.new().decode(
                bytes.fromhex(req["cose"]), load_pem_hcert_dsc(req["dsc_pem"].encode())
            )
        except Exception as err:  # the peer's verdict, reported, not raised
            json.dump({"error": f"{type(err).__name__}: {err}"}, sys.stdout)
        else:
            json.dump({"payload": payload.hex()}, sys.stdout)
        return
    key = cwt.COSEKey.from_pem(
        req["key_pem"].encode(), alg=req["alg"], kid=bytes.fromhex(req["kid"])
    )
    if req["op"] == "sign":
        token = cwt.encode(cbor2.loads(bytes.fromhex(req["claims_cbor"])), key)
        out = {"token": token.hex(), "cbor2": cbor2.__name__, "cwt": cwt.__version__}
    else:
        try:
            claims = cwt.decode(bytes.fromhex(req["cose"]), key)
        except Exception as err:  # the peer's verdict, reported, not raised
            out = {"error": f"{type(err).__name__}: {err}"}
        else:
            out = {"claims_cbor": cbor2.dumps(claims).hex()}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
