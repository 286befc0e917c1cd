{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINLCMYHPhvl12H1bmy3IwBv4VzO7GIWlc4y231+5nMgh",
  "public_key_fingerprint": "SHA256:M5NejxNMxvN8X5t85Jjo3k07N9uaxHQCTzijGHgQsBk",
  "signature": "fZgHwwgTtkkC4TfucAR33BzP5OAk0p0a6kLEDcVIMqwODfecxFLfttqX9kpf36C06s2MvkdHPG36siFdBNi+BQ==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "3b27fbe7a7a3b426d8f8af7e1ff65e58fe2b5c1bbe49e87261a124afbd0ad142",
  "signed_utc": "2026-11-30T02:30:09+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
