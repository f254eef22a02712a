"""The first bytes by which a compressed input is recognised, defined once for every reader."""
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"   # a zstd frame; as an ITCH length prefix it would be 10,421
