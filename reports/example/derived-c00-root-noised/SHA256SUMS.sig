{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILaCFL3b+A/9opIVrsQAYt2icAAKI69tkfMJu/03T3mw",
  "public_key_fingerprint": "SHA256:hW1wWfzZhpphSR04RfJPtkesOq8yiQ+xpvQwqCioNPg",
  "signature": "/7VA23y9oqbFd9ppYdV8IaSCsZHen+OWqZlWA+gR6Tit4ED0lO2DEzyxqkFniOK91cKfBIMdvSUlJ8vSiRjnDw==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "f09dfa00bd272332d61d5a9470309cd73fed36796ace5e76b5c56be1304ad3cf",
  "signed_utc": "2026-12-01T05:50:13+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
