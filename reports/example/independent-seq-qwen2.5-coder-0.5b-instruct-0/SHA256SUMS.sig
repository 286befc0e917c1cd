{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMYgrTd9XVfh0jgk7AFj+pAb9HCjciyWrq7w+0xis5ca",
  "public_key_fingerprint": "SHA256:dNGxtTy+bh3d6InXk+wwg53wGvo7qITKUSgLPyo4b5I",
  "signature": "BNPs6qidN6CHM6SDeOp/JKM8TC7NBfWgO7Z8RTJeHKdBD9GgfoSoP9b3fxPOFhWETQpXPyek6Q9ZMJCegloNAg==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "2bd8169d9619009a62bd6e886419e57a7d57162b674ea21d0fddc4b3a1d96e6a",
  "signed_utc": "2026-11-29T12:53:45+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
