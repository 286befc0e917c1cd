{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINLCMYHPhvl12H1bmy3IwBv4VzO7GIWlc4y231+5nMgh",
  "public_key_fingerprint": "SHA256:M5NejxNMxvN8X5t85Jjo3k07N9uaxHQCTzijGHgQsBk",
  "signature": "fcbhrcU+U7HexIIEGnVyfE5jyZU6qFqKWKgvH+rK8t0JzIGLzj40Mf8pjsH6V9tVYuN9+vEJWWf0DfFPi7+8CA==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "8c930214e15a0292f635794a87c5aa4162ac892f3bb68a0793eacdf322d2e3f8",
  "signed_utc": "2026-11-30T02:30:13+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
