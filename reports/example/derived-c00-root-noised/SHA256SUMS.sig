{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHT0iL9opRR/Ng5jJueIYEsX+PeNXc8kuUKwSYoCeYW0",
  "public_key_fingerprint": "SHA256:j152a/eRPuwq0O0ve7HE6xxfeYZjdmMhjvQ6dRPZ0Sc",
  "signature": "uKJWTyVhbpekJRaZaprJoCaXoJNr3lNLnxou5n3vLexJp/y74h1vwYrOiqTAqkuYu3aZbBGEO6+N6lKfjo/3Bg==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "8ff433a74eb1653c09abac6bf9c138b1951dd96f66426e60df8a99472113a06b",
  "signed_utc": "2026-12-01T06:15:00+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
