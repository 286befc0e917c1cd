{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII+O3V5bBxm01jXgz4K939Em5kK9Yi9i4m+ECVsAbkWI",
  "public_key_fingerprint": "SHA256:BI0EkKehFRvMxdDZ2eNaQ0l1Nft7Pdli8lMxrru72rg",
  "signature": "Ps2n3d7GkLuVJzMHAKHzuuj3mGI5xZoV+lKiAmyLZ/J6tPi0rpZMmPG5iqU0drZhbIdpRX0am0B+63dqeQGHAQ==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "872e251a958011c22cb78e32c6b744928f30acc3a3b810daaf74ae7b430be9d8",
  "signed_utc": "2026-11-30T02:51:56+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
