{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIasC2EVL898lo01Zj9qzMjZ8Bg7lYcmknF/2o+lh3qE",
  "public_key_fingerprint": "SHA256:ezZ7b7IHh/0GsMa1+D4ZGmSu5bCBnL5Cr/7f2gE3Oqo",
  "signature": "4HJb4QxPMG2cUhtOwk83EV1A+EuZwRrWPuJGt2ZnnxwxJOTFGGFaEn6ddnvSnz7wp97ucPdr7LVJTnI8n52zAA==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "a70b115f174557c7193d947bc5a759fcb2e3d93cf634e77bf3afac7cc4b2093b",
  "signed_utc": "2026-11-30T19:48:04+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
