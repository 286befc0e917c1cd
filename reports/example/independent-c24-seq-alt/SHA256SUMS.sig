{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICCRtI1reJpEYYIL6hSGaJUMBq62TVL9W5bf8lPzPekD",
  "public_key_fingerprint": "SHA256:NDjtrXVWfOfDGKNjhLB26cTpb/rMt9ttVlb7pasg5Qc",
  "signature": "M1D9gONaHzgpVXvCPP+oQF+36EkhjNuw1jXRUSs55KwDOuZC588sI1F1K7rrc3wg7ZXElALaKmOrwc1dVg8dAA==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "74381e0799b94a0154e0ba87c626bcfda2d070f38419cda3acf7b992e9352da9",
  "signed_utc": "2026-12-01T06:23:10+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
