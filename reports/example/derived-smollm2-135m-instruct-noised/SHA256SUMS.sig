{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH0agJ3jgKIswfAM7P9b/IDgZKnAjGJrDSnauRMe/oE7",
  "public_key_fingerprint": "SHA256:gFeL9eTaBzzUJBKLoVug9lf2JueJzgY/7HqOrDsYlE8",
  "signature": "c2rAAUptB7m0H2mCAHXDvEYQ9weuMo+KRJqcZRlIKRInZgF9BiBXyHM1i+5t7gxhr2Udc00WKmwbtmrvVXmqBA==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "108fbfe05d985245e2ada2c2b2bc356fe063d56517d5c1a5d0494daadec0888e",
  "signed_utc": "2026-11-30T02:26:18+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
