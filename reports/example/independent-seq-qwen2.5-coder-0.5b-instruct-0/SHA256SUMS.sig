{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH0agJ3jgKIswfAM7P9b/IDgZKnAjGJrDSnauRMe/oE7",
  "public_key_fingerprint": "SHA256:gFeL9eTaBzzUJBKLoVug9lf2JueJzgY/7HqOrDsYlE8",
  "signature": "n+Bjr+VsnGyQCbMs3MYNVEANp1tXOMYtNTpSWT1gcCBJSf+YKfl26hIVVzywqV8gMdyZdMZuwAr4npNl8JrCDg==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "215d7c493221b9e202f9d3306c9cf3afebb04e2f5b31dce9615b50a5032c61c5",
  "signed_utc": "2026-11-30T02:26:13+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
