{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIZ3RN93whabqTFZO9YVcX9W7Oc/mdaH8zyrqHQrUhUb",
  "public_key_fingerprint": "SHA256:e3zDD5OeNYflfvFGhitxvDQf3BuaPWmcUEznqRs8gak",
  "signature": "juwQoBTx+nTFLBKaZzU7o7QEbPrYBI+5d4DZZfgm7WGvdRKbxk/9Me2ugzTAohSLz9bOtMOzyGWlzL2QoDMpCw==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "5ba6cadecc065b89a777ea257247044a95365c7199c97502c59764d527d9fe78",
  "signed_utc": "2026-11-30T17:52:03+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
