{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIZ3RN93whabqTFZO9YVcX9W7Oc/mdaH8zyrqHQrUhUb",
  "public_key_fingerprint": "SHA256:e3zDD5OeNYflfvFGhitxvDQf3BuaPWmcUEznqRs8gak",
  "signature": "wZaaVNdJM4Xhyasbj/lgDOiTYzqCsFwqPAlmXNqUAE2nqop2WWgO98qc8/lfTJ5R3hJNBhYwHCIs4j0eG3l+Bw==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "6fd732b6311659f6ec8f741ef94a5980e5bc56615d43b59c5c0462644180dd5c",
  "signed_utc": "2026-11-30T17:52:03+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
