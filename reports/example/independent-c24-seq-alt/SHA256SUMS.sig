{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKJPF1EZdBFZJuaoD0pOwad/gN/h7V64kaN3rrlx35qo",
  "public_key_fingerprint": "SHA256:zIAzrZkVDoznyV+siIpsJFbCZ+z7uh+jYR7a3/Mrsow",
  "signature": "jbZArUYegPgFUVKLSLcwXvRzfLJstMgrIdxQBvqxl0h2w6uVHrPP2nj+nRHX6hgtCQMB+Td/+yXLM8rswtmfAw==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "4c28396c0f7af22bf52d415cf1ebd3b33429d84a62f20875e3c0751249522579",
  "signed_utc": "2026-11-30T22:14:57+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
