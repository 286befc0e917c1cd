{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGB1Uji6PmvJYiphI3tl4o936bCfUFzpVhkNwChux4iy",
  "public_key_fingerprint": "SHA256:GNMku7aob6P/qtN+qxgn1IbmlZU/+3KsBlRu7tmtC24",
  "signature": "kWdcwlr63XK7DywhsdEt7lIa/k85Q06bB7RD7KqCmOKNnP/6xYxYqM/oEwFV3/LKX49sKomSiyf3AzHRH6nzCw==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "c83d2f323ac33d0728b8041f8cc4e4095574b2a1476b2c5e05d0756ee645226d",
  "signed_utc": "2026-11-29T14:04:22+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
