/*
 * Byte views of JavaScript values for the two addons (tun.c, datapath.c): a
 * Uint8Array/Buffer (any typed array, counted in bytes), an ArrayBuffer or a
 * DataView as (pointer, length), and a Uint32Array as (pointer, count).
 * Header-only: each addon is its own shared object.
 */
#ifndef PILOT_NAPI_BYTES_H
#define PILOT_NAPI_BYTES_H

#include <node_api.h>
#include <stdint.h>

/* 0 on success, -1 when `v` is none of those (or N-API fails). */
static int get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t n, off;
    void *p;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &type, &n, &p, &ab, &off) != napi_ok) return -1;
    size_t elem = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: elem = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: elem = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
      default: break;
    }
    *data = (uint8_t *)p;
    *len = n * elem;
    return 0;
  }
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    void *p;
    if (napi_get_arraybuffer_info(env, v, &p, len) != napi_ok) return -1;
    *data = (uint8_t *)p;
    return 0;
  }
  if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    void *p;
    napi_value ab;
    size_t off;
    if (napi_get_dataview_info(env, v, len, &p, &ab, &off) != napi_ok) return -1;
    *data = (uint8_t *)p;
    return 0;
  }
  return -1;
}

/* A Uint32Array as (pointer, element count); -1 for anything else. */
static int get_u32s(napi_env env, napi_value v, uint32_t **out, size_t *n) {
  bool is;
  napi_typedarray_type type;
  void *p;
  napi_value ab;
  size_t off;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return -1;
  if (napi_get_typedarray_info(env, v, &type, n, &p, &ab, &off) != napi_ok || type != napi_uint32_array) return -1;
  *out = (uint32_t *)p;
  return 0;
}

#endif
