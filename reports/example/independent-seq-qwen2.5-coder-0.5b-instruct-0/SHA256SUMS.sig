{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOrwhSVYPippA32U+edQKfNNk+Mj2Ai9xilRggm+mvmu",
  "public_key_fingerprint": "SHA256:PamIBs7DRDne47+Us+gUZh3pI6Pm04O7QzPVFUr//XQ",
  "signature": "RH8Yzmrm3oLTN1Ev6eVM8ZDIRMhC8MF3uI4WjrQ7L+Jqcu6mpupnuRUP0kK+T/BIvMjwo/Ygrer2Jvq9SOmODQ==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "6d828747693bc191bd56995e8af20fe63dcba14c5f63fec09c3f092262e5a459",
  "signed_utc": "2026-11-29T13:53:21+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
