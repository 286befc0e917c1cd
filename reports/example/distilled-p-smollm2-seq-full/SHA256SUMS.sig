{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICCRtI1reJpEYYIL6hSGaJUMBq62TVL9W5bf8lPzPekD",
  "public_key_fingerprint": "SHA256:NDjtrXVWfOfDGKNjhLB26cTpb/rMt9ttVlb7pasg5Qc",
  "signature": "mdOt+zL8spX2m1tliXDdpyFTFXNJtjJ+jB2XPAQRiG6BHnwR7LYRuzLrJK0NW0hgHysnMWYzFsS+X3ca74EMAg==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "7ff14638c4032623109f3957213180f0989c65a27e398eeb1eb19f5128a21ceb",
  "signed_utc": "2026-12-01T06:23:10+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
