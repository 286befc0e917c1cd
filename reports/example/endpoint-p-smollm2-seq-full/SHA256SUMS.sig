{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHT0iL9opRR/Ng5jJueIYEsX+PeNXc8kuUKwSYoCeYW0",
  "public_key_fingerprint": "SHA256:j152a/eRPuwq0O0ve7HE6xxfeYZjdmMhjvQ6dRPZ0Sc",
  "signature": "xqJquO/tWXUrlyK0Q5TyU+96ivkrZCjsWtT4Oe+/Cu7X5w3+vLGtUDEdQ08A0E+zZKrKwSWrGOZCsIlBEkjRDQ==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "7016ea1dc8a17723c7c22e55100149b89d1405896c5f58e0b0635b6bf4e3f914",
  "signed_utc": "2026-12-01T06:15:00+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
