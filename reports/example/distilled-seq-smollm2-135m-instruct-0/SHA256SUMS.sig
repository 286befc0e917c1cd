{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH0agJ3jgKIswfAM7P9b/IDgZKnAjGJrDSnauRMe/oE7",
  "public_key_fingerprint": "SHA256:gFeL9eTaBzzUJBKLoVug9lf2JueJzgY/7HqOrDsYlE8",
  "signature": "cEzoyXILlfJTPgScOwQW5QzoUo8sSMaUV5YgqR9gCKMmJRYxaFe6orq+yaVZSuKAoK4E1iQ1PvPcVOq0Yc3AAA==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "dfae16668b39781bdaf154afa70fbb9f2844c3eb39594d5529cf1a96a7dc533b",
  "signed_utc": "2026-11-30T02:26:12+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
