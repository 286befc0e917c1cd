{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF+YnOIUItrSdCyN1OHxJ5brmgIKblUr4qp5ks+NyXZ6",
  "public_key_fingerprint": "SHA256:J8Vbu34pZiaEj/2TS51KPZjJfav9XEJeuut9D/EoWCY",
  "signature": "yeCT7e+YNWYCB3W0kzu8NXuaOFun9Pc+zwfZRqfxEEFXk1GdGyZVcJFAMb/27+8THzbBPSbtLGSauotomYrnBg==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "e4dd09f603bfa0e26ab0fb0d5513d38983dacb043e326b103bb9929c8562e19e",
  "signed_utc": "2026-11-30T09:04:36+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
