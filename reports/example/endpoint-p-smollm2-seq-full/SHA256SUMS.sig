{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEvUf6f7l9Rp6DMfSXyrPCo78Ov7M6pqHpjud+c5jN/6",
  "public_key_fingerprint": "SHA256:eNl7qsCiFEjQfYTCdXLE/TPMH6H8ANzi19Pm+ms6X7c",
  "signature": "JqT9wdAtd0XVV6CcVW6FLwP2nrtzqXA+nOZbZjasC+0bz9R2f++KL7judNinchha1jWAsgykPBKHyNYYODaFCw==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "32349d30abcafa423d82038ee236207894231e1dbd6ac42d6bd7671e82b0f0f3",
  "signed_utc": "2026-12-01T01:01:36+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
