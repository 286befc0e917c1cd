{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOrwhSVYPippA32U+edQKfNNk+Mj2Ai9xilRggm+mvmu",
  "public_key_fingerprint": "SHA256:PamIBs7DRDne47+Us+gUZh3pI6Pm04O7QzPVFUr//XQ",
  "signature": "CRI9AWiq05JQlelHw8dRcWCuqSqzVJcMORxhoitm/c50GZzS9Ohzm9n4LNcv85TAUUQghlOvHMbDB5Bo/6jLDQ==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "d84e9701608aad8216f2c443768f208581a8dca8eb5b4ff8ebd9cb4484488498",
  "signed_utc": "2026-11-29T13:54:08+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
