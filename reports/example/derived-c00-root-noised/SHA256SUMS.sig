{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQkpgK2AvpF31GTfDDnKJAnQX0EX72qj3HAamP68nZb",
  "public_key_fingerprint": "SHA256:9fAGrJzv62VLfJNAMNDIv7K9bwt886SdGKCbip80zN8",
  "signature": "QWFKX6uGV3rC5m1HUEbVgmMEBwqH4TuF5vgGRlgidirRtMoRro/ORBe12nS0XK5TD3cCQECiQ2aeHhFfIDG1Cg==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "721e23ac5c9e7600211bbe9bd0bc929f22b320b201b4da10281d7923dc9a610f",
  "signed_utc": "2026-11-30T21:51:23+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
