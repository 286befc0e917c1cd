{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILaCFL3b+A/9opIVrsQAYt2icAAKI69tkfMJu/03T3mw",
  "public_key_fingerprint": "SHA256:hW1wWfzZhpphSR04RfJPtkesOq8yiQ+xpvQwqCioNPg",
  "signature": "lIa5X+dH/MzWplA1Ls0ycdg91UsFEgbClmDWiiKXa7zNezvrtHw7r8FnEhavvDFCDe6f/u5Kz3Oh3HaijF3fAQ==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "fb93b984bd6297af093f5db4bfd4ac805b87ccc645de2e0444cadcb83e6c4f8a",
  "signed_utc": "2026-12-01T05:50:13+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
