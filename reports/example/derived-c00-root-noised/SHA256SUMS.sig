{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF+YnOIUItrSdCyN1OHxJ5brmgIKblUr4qp5ks+NyXZ6",
  "public_key_fingerprint": "SHA256:J8Vbu34pZiaEj/2TS51KPZjJfav9XEJeuut9D/EoWCY",
  "signature": "u1kv9aP5iRczLTrO0tuhSBf9BjjGFgmkx9kn6SHo60K63kThDd5MWMKxnrHIVDrlc2xIhmh2Xm/QKGCop27lBw==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "da6c132527a1cc7457088d07cdc0e3602febb37697c6e624c06e01c11cbd9e74",
  "signed_utc": "2026-11-30T09:04:39+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
