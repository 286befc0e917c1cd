{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQkpgK2AvpF31GTfDDnKJAnQX0EX72qj3HAamP68nZb",
  "public_key_fingerprint": "SHA256:9fAGrJzv62VLfJNAMNDIv7K9bwt886SdGKCbip80zN8",
  "signature": "RKlrSEvyxBHIeY1muN3rQ6woLQoC1aEVqDkPDXQP/Hnuss7wL+ZhtPK8HmxXyxc/6TrtZRXxApPGgz7mLHWRDw==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "a86c7567005e597b10e6090fef947353cc827048ef884855fe944e1f23873323",
  "signed_utc": "2026-11-30T21:51:23+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
