{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGB1Uji6PmvJYiphI3tl4o936bCfUFzpVhkNwChux4iy",
  "public_key_fingerprint": "SHA256:GNMku7aob6P/qtN+qxgn1IbmlZU/+3KsBlRu7tmtC24",
  "signature": "rP4j2yYp4VDaSB9406S0NArQ1BKf2V644Fe5DrBNO5rIuBwimZTWhva71narX+QTbhpM3OuC8hKSLxhDnyPCBA==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "73e1fa9f6e409c6014a73ce0c26d6b58736de005521c2e57e57b39732431cf10",
  "signed_utc": "2026-11-29T14:04:27+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
