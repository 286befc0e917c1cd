{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILaCFL3b+A/9opIVrsQAYt2icAAKI69tkfMJu/03T3mw",
  "public_key_fingerprint": "SHA256:hW1wWfzZhpphSR04RfJPtkesOq8yiQ+xpvQwqCioNPg",
  "signature": "n9EGv/Z7YjBVv5MwLtU8TadACHZCcwwKuv34y8ieIJk6qUXeuB8wALzlQmbqA9t9VytBicI/bc4u7R/ot3ZVAA==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "5ca1f9105b30d69bfed55d6ddae8f3e866b2c2fa63f8f21865b2ed863b4f0468",
  "signed_utc": "2026-12-01T05:50:13+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
