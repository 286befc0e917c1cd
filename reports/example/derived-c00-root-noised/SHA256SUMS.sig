{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKJPF1EZdBFZJuaoD0pOwad/gN/h7V64kaN3rrlx35qo",
  "public_key_fingerprint": "SHA256:zIAzrZkVDoznyV+siIpsJFbCZ+z7uh+jYR7a3/Mrsow",
  "signature": "J5ITt6/V+i4IW4U7uQvD4N+S+uVUZEDjTNU0gOSiDbI/sUHkllfadvt6sELgVSaKWEVXEKZv9hEAMT8C14yCAQ==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "8c7510a52f74498095f5eb25c0ddddd6af98c9daa11b51b485e80384105aba0b",
  "signed_utc": "2026-11-30T22:14:57+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
