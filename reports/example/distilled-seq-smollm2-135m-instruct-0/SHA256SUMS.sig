{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOrwhSVYPippA32U+edQKfNNk+Mj2Ai9xilRggm+mvmu",
  "public_key_fingerprint": "SHA256:PamIBs7DRDne47+Us+gUZh3pI6Pm04O7QzPVFUr//XQ",
  "signature": "V7s/3cP0d2NzVTmQxcwShNERo20hSHBFlCqcAXM8eCkLszsjGma3gCWv9kRpt1GlDnV6rXu4JJ9tLFgHodo3CQ==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "80ba5b050630a9265f9cb2e8a4b4a49b58c751c3847a13eb885ee425f44fe461",
  "signed_utc": "2026-11-29T13:53:20+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
