{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILJCWt6rTl8w3c28579JdHucfGevM8vXb1J9EEEx6ji8",
  "public_key_fingerprint": "SHA256:hcV1ktNOziStf4a+euXKcWrFq4fetkVLyuTCjW22rLw",
  "signature": "Fu+rxnj+LncQLnG2ZUJ2hBFV+T3+d2oWJJqs9hTEvFWH89nDdyyinBQK1rVLjynAJF6wi8mO+XjnvxWtKweSCQ==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "62b6a99ccd41de0651c5f2426a8d6c061e1a67bcb8acc3fa3943717fe7c23fab",
  "signed_utc": "2026-11-30T01:56:44+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
