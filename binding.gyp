{
  "targets": [
    {
      "target_name": "pilot_tun_native",
      "sources": ["native/tun.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"],
      "conditions": [
        ["OS!='linux'", { "type": "none", "sources!": ["native/tun.c"] }]
      ]
    },
    {
      "target_name": "pilot_datapath",
      "sources": ["native/datapath.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8", "OPENSSL_API_COMPAT=0x10100000L"],
      "conditions": [
        ["OS!='linux'", { "type": "none", "sources!": ["native/datapath.c"] }]
      ]
    }
  ]
}
