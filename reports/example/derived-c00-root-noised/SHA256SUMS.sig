{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ/lb9ZoUrKiyn4b2qndj+MHa23fc0VxVQF647bnGqRf",
  "public_key_fingerprint": "SHA256:gQR1a/dRMmHawMjIk8LnKzIuTMKVTo8BjO7PoGPO/Lg",
  "signature": "smvDQLX2iyaFzKSxL95a1Xflf4rjS0OvdjZ6HPImkcvYjahKeYphHLU+Bfhlcpzt0fLBNujG+ATuUkGDJdBlBw==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "1719ceb6a9c538c77f67d83a420f1edb09d2b1143552e95c876628a1cfee89ed",
  "signed_utc": "2026-11-30T22:28:41+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
