{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ/lb9ZoUrKiyn4b2qndj+MHa23fc0VxVQF647bnGqRf",
  "public_key_fingerprint": "SHA256:gQR1a/dRMmHawMjIk8LnKzIuTMKVTo8BjO7PoGPO/Lg",
  "signature": "LYsmSt0CEGpAmBP40vHWE1pprq96Fw3L7XLZJ8tUVuhHGrw7qUJSAyOuOEm2XwjI92YziRbEWfjP2yiTWtj4DA==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "de707cab01e8af094bb4e0471c1849a8c708bc00c0314fdb9e3baa14073c6327",
  "signed_utc": "2026-11-30T22:28:41+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
