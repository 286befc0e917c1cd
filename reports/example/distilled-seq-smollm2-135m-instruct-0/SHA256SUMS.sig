{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMYgrTd9XVfh0jgk7AFj+pAb9HCjciyWrq7w+0xis5ca",
  "public_key_fingerprint": "SHA256:dNGxtTy+bh3d6InXk+wwg53wGvo7qITKUSgLPyo4b5I",
  "signature": "kp6skSjjorssvJJmbExIERazGyhN5qKkFujvsWhqQud72aGXGpVr/XxRzleu1EPxvtL9jPnIXIJRyIeGklXmBA==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "a2a8eb14179eb52e4a45042d65c4bef5cd9132cf19c0ccf66ad750e211160bc8",
  "signed_utc": "2026-11-29T12:53:45+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
