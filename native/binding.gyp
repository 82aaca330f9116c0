{
  "targets": [
    {
      "target_name": "udp_batch",
      "sources": ["udp_batch.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    },
    {
      "target_name": "ring_seal",
      "sources": ["ring_seal.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
