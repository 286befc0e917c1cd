{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG+x2VnYstcDbD6QOa7AlpcowQEYUfsdLoR5D3zJuYv1",
  "public_key_fingerprint": "SHA256:UMMKN2epL7K7w/an2wo72errQ/BR06gjh7Oeq00H50w",
  "signature": "OPJp/XbAdryfuaTJ5gcRAEPdGDr4KKkA/xSCNIv0fpgTUPfyUITt2wgRveQEpezHSr0Vq53PyNxCrUbgbDAwDA==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "54410599835619a1a12bf92ca74030e70ceee0f981194c4226a6f5c166217e9a",
  "signed_utc": "2026-11-29T13:28:03+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
