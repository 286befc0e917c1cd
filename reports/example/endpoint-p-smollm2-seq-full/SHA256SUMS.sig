{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIasC2EVL898lo01Zj9qzMjZ8Bg7lYcmknF/2o+lh3qE",
  "public_key_fingerprint": "SHA256:ezZ7b7IHh/0GsMa1+D4ZGmSu5bCBnL5Cr/7f2gE3Oqo",
  "signature": "4S/2A21+lgsSRwRLSjQ8vwGR8KipFfS3+cvHONKkVWxMB9ztSnByYB91Ql8IyHNNAP7Yf/Zrt2OoAZVecZ2OCw==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "d2bf9fbf1da0400e7407f08e0e46124307648040b659e2437e8c33af7d8dd0f9",
  "signed_utc": "2026-11-30T19:48:04+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
