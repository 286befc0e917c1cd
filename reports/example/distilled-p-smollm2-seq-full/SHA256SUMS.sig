{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKJPF1EZdBFZJuaoD0pOwad/gN/h7V64kaN3rrlx35qo",
  "public_key_fingerprint": "SHA256:zIAzrZkVDoznyV+siIpsJFbCZ+z7uh+jYR7a3/Mrsow",
  "signature": "x97bsA9rMHB8ndDh88dFCATV1c0YgdHYyqM22LPTSXT3gUxS0sMR08UB+GLRzs4DSKPk4LAfiQBjA0ZKxnVrCQ==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "7efe30e01c64a116b5788328d67ab1df6a2a33cd6fdf812c5a5d7fa17a3e615b",
  "signed_utc": "2026-11-30T22:14:56+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
