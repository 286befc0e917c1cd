{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQkpgK2AvpF31GTfDDnKJAnQX0EX72qj3HAamP68nZb",
  "public_key_fingerprint": "SHA256:9fAGrJzv62VLfJNAMNDIv7K9bwt886SdGKCbip80zN8",
  "signature": "UQqu9tKyyf76f1lOqoiefAcJ5VN/qC8iVjiRxYVNDGPXOaOSNQz/ltHaXgXg0XUWzu/EWHrEwr1Nks1XzLvkBA==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "d3cdf03dd4fe9349bb4b89a8331c815c9221513fa1d81eb6c4d8511e68d096f0",
  "signed_utc": "2026-11-30T21:51:23+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
