{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIasC2EVL898lo01Zj9qzMjZ8Bg7lYcmknF/2o+lh3qE",
  "public_key_fingerprint": "SHA256:ezZ7b7IHh/0GsMa1+D4ZGmSu5bCBnL5Cr/7f2gE3Oqo",
  "signature": "oXwy1eQCLKnNVfz20VfiNRSM7DWhJl3IgApNbV+HqTEOKZ3d796QBZRvFkIC+5NSELdh5c5sB5M3vFPo4vJZAg==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "d23726043d07ca860b80583a9bf860a41393bbee2efa65c7b7e16fef8f5e32e6",
  "signed_utc": "2026-11-30T19:48:04+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
