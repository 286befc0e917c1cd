{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHT0iL9opRR/Ng5jJueIYEsX+PeNXc8kuUKwSYoCeYW0",
  "public_key_fingerprint": "SHA256:j152a/eRPuwq0O0ve7HE6xxfeYZjdmMhjvQ6dRPZ0Sc",
  "signature": "P+Qg7965hdzsGSrJaxU2nWJ5wj5GxlamD7+uHf5fqmQnp6B2x1IKIMHaC/O9e9nuU54C5B1ESTDEm9t3HbSaAA==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "a0d485d3ccd835312d3360ffe275840e7655d8aecf58c7cf4d1701bd5171f0d8",
  "signed_utc": "2026-12-01T06:15:00+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
