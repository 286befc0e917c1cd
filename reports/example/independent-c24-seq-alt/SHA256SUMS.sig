{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ/lb9ZoUrKiyn4b2qndj+MHa23fc0VxVQF647bnGqRf",
  "public_key_fingerprint": "SHA256:gQR1a/dRMmHawMjIk8LnKzIuTMKVTo8BjO7PoGPO/Lg",
  "signature": "mRvcZrdppWMPHLGM9R0DzSV5kqB0hrVuXUl4fjavxV7gmFtDwh6UDstd+mWO3zmZgjAxHVBD+ujvC/5UUZDRBA==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "b4fe5aeb8221b3394ccb573f35352992b900db8a1099e47328f344a6a3f6bb7e",
  "signed_utc": "2026-11-30T22:28:41+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
