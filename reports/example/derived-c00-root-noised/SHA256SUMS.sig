{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEvUf6f7l9Rp6DMfSXyrPCo78Ov7M6pqHpjud+c5jN/6",
  "public_key_fingerprint": "SHA256:eNl7qsCiFEjQfYTCdXLE/TPMH6H8ANzi19Pm+ms6X7c",
  "signature": "JYMPulxfOhKGhlkVp5Wah7aAZNq35dVz39/K5GvdtDv/j3VbPqABkBhB29GniY+xWaZbd1BIiraTxXnqu2/dCw==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "b715a21bc64fbdcb85901cec20d80b4d6db39f3de9ef6c51e1bedcaae4e022e4",
  "signed_utc": "2026-12-01T01:01:36+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
