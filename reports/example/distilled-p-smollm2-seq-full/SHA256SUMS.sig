{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIZ3RN93whabqTFZO9YVcX9W7Oc/mdaH8zyrqHQrUhUb",
  "public_key_fingerprint": "SHA256:e3zDD5OeNYflfvFGhitxvDQf3BuaPWmcUEznqRs8gak",
  "signature": "oaREPM2Gb5/DK47xLFUrLD4C+rHmjGfFGHoN+d/FFl1yY1bbsM1IMz/E2mZEiTXvqyU3z37WKtf9hFVvzw0gAg==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "bb2792ee84a2311f5663fdafdd617cc74e1a7c3aa4f28bdc22c1f6ab7662543a",
  "signed_utc": "2026-11-30T17:52:03+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
