{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIta1a1cBvuBcwN8zpgCqBKU+KGpw2MCmDbynk6xr+GW",
  "public_key_fingerprint": "SHA256:G49cCJSMpF6ftryCv4hNCvPP/cgKUGdQl8G4nsCpOSI",
  "signature": "onXv7iIv0pTC8o8zwIA5V9dvcMr5dETRb+sAZU3MDAnB3r0WY59W6L7PhftuMij1iUvJltQV0ywoC90AYVHPBg==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "47031bdf0febfa335fc2613341fe029c65223baaccc0be5a861bfffaf43ed1ed",
  "signed_utc": "2026-11-29T23:54:44+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
