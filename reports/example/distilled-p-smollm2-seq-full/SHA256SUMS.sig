{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQkpgK2AvpF31GTfDDnKJAnQX0EX72qj3HAamP68nZb",
  "public_key_fingerprint": "SHA256:9fAGrJzv62VLfJNAMNDIv7K9bwt886SdGKCbip80zN8",
  "signature": "4B4/my72FV+yTNPRHODQlsw9DJgGSyt1J4Z1B9otRUR+HgrR87R4DX2T5C3FeDNEc3ytLceVX+/2PttcDH6RDA==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "2fd8cc146130faabbeddb603271c975ee66f6d69060fafee68511c432ad7a9f3",
  "signed_utc": "2026-11-30T21:51:23+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
