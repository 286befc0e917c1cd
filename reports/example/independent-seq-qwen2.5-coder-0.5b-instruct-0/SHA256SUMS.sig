{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIta1a1cBvuBcwN8zpgCqBKU+KGpw2MCmDbynk6xr+GW",
  "public_key_fingerprint": "SHA256:G49cCJSMpF6ftryCv4hNCvPP/cgKUGdQl8G4nsCpOSI",
  "signature": "QmRoGWX5K9FHTI7UPP5CXwsosRyLq1Rn18ISH/00hq9QaqGRAxOiPhEvaOZU1uonrYHhwtHx3mvKiQUk2L2pCw==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "0bec75591866543f165201d07b40596e288dc413b4fbfae905d04d8754e4a409",
  "signed_utc": "2026-11-29T23:54:42+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
