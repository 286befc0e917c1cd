{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG+x2VnYstcDbD6QOa7AlpcowQEYUfsdLoR5D3zJuYv1",
  "public_key_fingerprint": "SHA256:UMMKN2epL7K7w/an2wo72errQ/BR06gjh7Oeq00H50w",
  "signature": "hH9CdN8OkychmNei9hPq9KVTkO8gpHzrpnDKEJPFSHbS/PxKp0gBZtriYEyNTfmXrmgKzUmqWslH4q++x2GyCQ==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "5e030f248a695fae1b26edd320e7dc1ad29b18264b626f27609c343bd89bcc17",
  "signed_utc": "2026-11-29T13:28:00+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
