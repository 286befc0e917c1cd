{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIasC2EVL898lo01Zj9qzMjZ8Bg7lYcmknF/2o+lh3qE",
  "public_key_fingerprint": "SHA256:ezZ7b7IHh/0GsMa1+D4ZGmSu5bCBnL5Cr/7f2gE3Oqo",
  "signature": "4IV5h+Fma+pLL4mb+FJezzW0lO+bcFR4LVoGlyGk8NqJOJQKxIWfg5oSxIOB+uWCzbkeI3cA1kIqryR+aadXCA==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "b85ed63810e0aba3dbe9f3177fdeb6f6506b99350ece471095a372aca82df1c1",
  "signed_utc": "2026-11-30T19:48:04+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
