{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG+x2VnYstcDbD6QOa7AlpcowQEYUfsdLoR5D3zJuYv1",
  "public_key_fingerprint": "SHA256:UMMKN2epL7K7w/an2wo72errQ/BR06gjh7Oeq00H50w",
  "signature": "YGlMWdZhMgzUv0E6BsOCMq97BAPz/DjlMNuSbtC+lPvahpa1+iDZncywBbk5LHhSbTK20iufZ/TpgP3NSTx0Dw==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "f4a1bd658af5251d83d5181ae6484fb3c38a72cb5e2642d5cfa5dc998648e7d9",
  "signed_utc": "2026-11-29T13:27:59+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
