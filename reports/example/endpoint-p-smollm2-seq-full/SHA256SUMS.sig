{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICCRtI1reJpEYYIL6hSGaJUMBq62TVL9W5bf8lPzPekD",
  "public_key_fingerprint": "SHA256:NDjtrXVWfOfDGKNjhLB26cTpb/rMt9ttVlb7pasg5Qc",
  "signature": "xUKOV2sDp1lgOO3c5XlCcNXp7mPmQuZhhY/vyp2f0k6EpAshIM2E5nmPOMT5or86Ao6FABSdpLhAgpRMYOgFAQ==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "2c4756f754c5bdee0cbc94f6ce7eaf11abeb6ba1aa8b8e2c74ac462c1e64afce",
  "signed_utc": "2026-12-01T06:23:10+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
