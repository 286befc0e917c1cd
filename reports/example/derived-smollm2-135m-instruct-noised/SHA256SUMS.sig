{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILJCWt6rTl8w3c28579JdHucfGevM8vXb1J9EEEx6ji8",
  "public_key_fingerprint": "SHA256:hcV1ktNOziStf4a+euXKcWrFq4fetkVLyuTCjW22rLw",
  "signature": "5bqxO7bYZx6uWr9S3Ki3z/vJTAQMqtSzHtuDzFMQ8xsSZX86GtFuQlqNOscTfEWjdy+hYJpnmcZCcmRfrv9SBw==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "0e81299ddebf651a7ae771199571b78287b51a802226dded0ad2b762b1bde888",
  "signed_utc": "2026-11-30T01:56:49+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
