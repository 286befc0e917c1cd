{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINLCMYHPhvl12H1bmy3IwBv4VzO7GIWlc4y231+5nMgh",
  "public_key_fingerprint": "SHA256:M5NejxNMxvN8X5t85Jjo3k07N9uaxHQCTzijGHgQsBk",
  "signature": "b+k14cQGGaWSut+e1G5joJK1m1LftPOAZFpcD1k7nj06bdbyHwXJvUDKKkJNafLlLMtQ5b0baorwOGm1w564Cg==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "50cd6024c81178e30d0c6558c62c0e0b8725fc6239956e9db43a2847029af6ac",
  "signed_utc": "2026-11-30T02:30:08+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
