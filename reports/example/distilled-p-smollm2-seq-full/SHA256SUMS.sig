{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEvUf6f7l9Rp6DMfSXyrPCo78Ov7M6pqHpjud+c5jN/6",
  "public_key_fingerprint": "SHA256:eNl7qsCiFEjQfYTCdXLE/TPMH6H8ANzi19Pm+ms6X7c",
  "signature": "1gMLGEAfDljDZ+5zrJAHnitEKyJDGQTdANjDVLkDBjML0WlkVo3XagvAOQFKjWLZ4uE37IcJL9OUqYO6aGdcBg==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "6cb31f1bcb88711eed54d2702d5263ed14218cf6be974fba03acfb6a10db20c6",
  "signed_utc": "2026-12-01T01:01:36+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
