{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHT0iL9opRR/Ng5jJueIYEsX+PeNXc8kuUKwSYoCeYW0",
  "public_key_fingerprint": "SHA256:j152a/eRPuwq0O0ve7HE6xxfeYZjdmMhjvQ6dRPZ0Sc",
  "signature": "rpVXK7x3rZIlwLjSYuUeMJU98TrfuZuDpVYNI8bqcTySwShGsT6VRMFTzQdS1Tf0jYHB8zFmE66KjWZkUmt2BQ==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "05083a884b8cd1965eeed301cb9746b7ea2551e51e320a523e56958497aedae7",
  "signed_utc": "2026-12-01T06:15:00+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
