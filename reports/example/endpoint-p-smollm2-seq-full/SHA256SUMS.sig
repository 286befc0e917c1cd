{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKJPF1EZdBFZJuaoD0pOwad/gN/h7V64kaN3rrlx35qo",
  "public_key_fingerprint": "SHA256:zIAzrZkVDoznyV+siIpsJFbCZ+z7uh+jYR7a3/Mrsow",
  "signature": "Uh0cwYn4AbkNNVe8I7pXss0vr79/2G3MwV41CglpOM2lnvCKSomRyDadE6ghvjyPZR+A9m/V4RXBuOWLEWWTDg==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "a7534e99c307ffcad5996966baabe1ddec7a3fb55b449378f3998799c1cf301e",
  "signed_utc": "2026-11-30T22:14:57+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
