{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMYgrTd9XVfh0jgk7AFj+pAb9HCjciyWrq7w+0xis5ca",
  "public_key_fingerprint": "SHA256:dNGxtTy+bh3d6InXk+wwg53wGvo7qITKUSgLPyo4b5I",
  "signature": "HRNV71i2d/IhHg4bpbX3wyqQx27/RNfThWry35i58lffz+9Qg0A0xdtPKTakTXdT4nkU/eJL3aeHYwCMaZjMBw==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "e8c1b1ebb82249f20096314d0dc60cefdeb66b51e285b157bce349d96461c553",
  "signed_utc": "2026-11-29T12:53:48+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
