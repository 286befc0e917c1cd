{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIta1a1cBvuBcwN8zpgCqBKU+KGpw2MCmDbynk6xr+GW",
  "public_key_fingerprint": "SHA256:G49cCJSMpF6ftryCv4hNCvPP/cgKUGdQl8G4nsCpOSI",
  "signature": "9PzSXADtg0QzULXZXSQ/wmHkKKrsT+er8DIaE17M6Mwl4szvcom3hckesXebTTDEvXp3LzcEXuF2nMiSsiD6Dg==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "43a3592a8b8b245c2703ca3c6b2288a71dd01746dcf04ce116f1fc924f3ccb8a",
  "signed_utc": "2026-11-29T23:54:42+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
