{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF+YnOIUItrSdCyN1OHxJ5brmgIKblUr4qp5ks+NyXZ6",
  "public_key_fingerprint": "SHA256:J8Vbu34pZiaEj/2TS51KPZjJfav9XEJeuut9D/EoWCY",
  "signature": "TIYmq94ydnEmG6YD/AAX0KCmdnXaFjCvrdrYFQQLU4Iq+nV7oEyj4TXYgvUJssycxZItbcuQDBIm30FLl7VuBQ==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "f20a1aa057287d7f0eaac205bde8a858114b75b9120aeee7daa53636308df872",
  "signed_utc": "2026-11-30T09:04:33+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
