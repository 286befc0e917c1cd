{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILaCFL3b+A/9opIVrsQAYt2icAAKI69tkfMJu/03T3mw",
  "public_key_fingerprint": "SHA256:hW1wWfzZhpphSR04RfJPtkesOq8yiQ+xpvQwqCioNPg",
  "signature": "Qog1Q2nEP/1sPus92ZEYXrn6BSROaCNqTn/O6HRY/RN6GVVpZOa5YvOf+Dcy0hN6WxtDD8HY92Rz3Fx2o2FQDA==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "fa212e01ed7f1312b517893b409d9665ebe204f235b8ff22ac48ed6c5db3f428",
  "signed_utc": "2026-12-01T05:50:13+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
