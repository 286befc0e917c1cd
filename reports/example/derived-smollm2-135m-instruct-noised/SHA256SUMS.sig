{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII+O3V5bBxm01jXgz4K939Em5kK9Yi9i4m+ECVsAbkWI",
  "public_key_fingerprint": "SHA256:BI0EkKehFRvMxdDZ2eNaQ0l1Nft7Pdli8lMxrru72rg",
  "signature": "vElGN7F2N2T3b3k6xjyMbqOCyo/0F//lvmvp6SvheGnXrpkCEvPXpAIs+v18WNveXe7PhGETqot3+2hZqQMwCA==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "d94efe08980834d8160a1a483757989a8aad67742902f9bf675ef0071502a3e8",
  "signed_utc": "2026-11-30T02:52:01+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
