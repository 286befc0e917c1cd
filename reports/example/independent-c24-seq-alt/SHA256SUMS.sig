{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEvUf6f7l9Rp6DMfSXyrPCo78Ov7M6pqHpjud+c5jN/6",
  "public_key_fingerprint": "SHA256:eNl7qsCiFEjQfYTCdXLE/TPMH6H8ANzi19Pm+ms6X7c",
  "signature": "0W3nGncocOxmiLoFAMacEuDM7X0UIKMVq9JZddPOz7V/aOnMmLtexEP/e8bPdvJ5KYjutNsm52dx+yHEc1gkCA==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "7af493edaee80f3a34c7915abb4743a04fd6d02039950f993374856c593dd339",
  "signed_utc": "2026-12-01T01:01:36+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
