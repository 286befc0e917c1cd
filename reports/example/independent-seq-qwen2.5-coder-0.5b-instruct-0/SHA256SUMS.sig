{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGB1Uji6PmvJYiphI3tl4o936bCfUFzpVhkNwChux4iy",
  "public_key_fingerprint": "SHA256:GNMku7aob6P/qtN+qxgn1IbmlZU/+3KsBlRu7tmtC24",
  "signature": "bvH5gYgfcPsJ2B90prigNYji8xn9CsFgtH2D6UwZbOuVNk561QfgE5+xI8ZID4h6sgr4fvCTupyLTVRuz+ACDw==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "5b0c43bb20a064bb7236635da39c470e751c6bd10cd320311bb0bf234d95b337",
  "signed_utc": "2026-11-29T14:04:22+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
