{
  "algorithm": "ed25519",
  "format": "provenance-signature/1",
  "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII+O3V5bBxm01jXgz4K939Em5kK9Yi9i4m+ECVsAbkWI",
  "public_key_fingerprint": "SHA256:BI0EkKehFRvMxdDZ2eNaQ0l1Nft7Pdli8lMxrru72rg",
  "signature": "46VmhXchvIRo/d0AvFbS5FEtSrWJItSP3jolRR/5PyVRtNWQO/XB825At3hbSnUO7P4XsWTvEQPvVDvEypsnBQ==",
  "signed_file": "SHA256SUMS",
  "signed_file_sha256": "a230a1884219ee2295bd1bf1683c69f619a40b39f6700a13ef235f2061d269a7",
  "signed_utc": "2026-11-30T02:51:56+00:00",
  "signer": "provenance maintainers (demo key, this run only)"
}
