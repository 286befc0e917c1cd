{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ/lb9ZoUrKiyn4b2qndj+MHa23fc0VxVQF647bnGqRf",
  "public_key_fingerprint": "SHA256:gQR1a/dRMmHawMjIk8LnKzIuTMKVTo8BjO7PoGPO/Lg",
  "signature": "ffig5vrpdFiLVUUS6xqYyjD6WdBNm0xH+WYc2rgCc8d/ji+C875e10nb29PgaKN5i5HUY9jN54I6UvlPIRs/AA==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "b1eb50274c2bc619884edb69d89e80bbc52bbeaaac8598e6bf095c942b97f1d3",
  "signed_utc": "2026-11-30T22:28:41+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
