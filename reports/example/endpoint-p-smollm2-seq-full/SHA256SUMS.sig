{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIZ3RN93whabqTFZO9YVcX9W7Oc/mdaH8zyrqHQrUhUb",
  "public_key_fingerprint": "SHA256:e3zDD5OeNYflfvFGhitxvDQf3BuaPWmcUEznqRs8gak",
  "signature": "kDqSe9kPXdmvvLJvVqvf0WnoGZKn8iHagcumGp+RbBhiJQQL0v6ITud+UG80N+eaWEQFW99XUDyh28u3K4qEAg==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "459c166da9cf66af197690bff60db4c8ddc1fc7713758c8f5607d77f7939d053",
  "signed_utc": "2026-11-30T17:52:03+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
