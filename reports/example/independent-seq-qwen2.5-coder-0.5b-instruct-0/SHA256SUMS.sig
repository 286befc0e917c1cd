{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILJCWt6rTl8w3c28579JdHucfGevM8vXb1J9EEEx6ji8",
  "public_key_fingerprint": "SHA256:hcV1ktNOziStf4a+euXKcWrFq4fetkVLyuTCjW22rLw",
  "signature": "0fTKnG6jKD2GrliNEhdv5WqpUkzLQmbKunafhHcWmTevfLkPm0g1LCRBCZagqmAosk/Ec+0FwQBX0NL2jngNCg==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "61cef7b22cc341660dd783317b45437dd5501881dc8e5ed079ffa64729a6a819",
  "signed_utc": "2026-11-30T01:56:45+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
