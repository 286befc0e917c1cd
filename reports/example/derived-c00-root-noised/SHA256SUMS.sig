{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICCRtI1reJpEYYIL6hSGaJUMBq62TVL9W5bf8lPzPekD",
  "public_key_fingerprint": "SHA256:NDjtrXVWfOfDGKNjhLB26cTpb/rMt9ttVlb7pasg5Qc",
  "signature": "iub0gVNhJmH2svxxclRtOawUqR4FGFmASj6NoeNSA1m7O63LwUAFRduxQJZnjX4MwmbGSqWZ4F7TBGHK1PesAw==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "509d8a3832694f73dea3d7a8fabee61ac9e37c31cd8e8aef317450160a5c8f70",
  "signed_utc": "2026-12-01T06:23:10+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
