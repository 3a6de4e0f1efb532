/*
 * N-API helpers the two addons (tun.c, datapath.c) share: byte views of
 * JavaScript values (a Uint8Array/Buffer or any typed array, counted in bytes,
 * an ArrayBuffer or a DataView as (pointer, length); a Uint32Array as
 * (pointer, count)), and calling JS from a libuv callback. Header-only: each
 * addon is its own shared object.
 */
#ifndef PILOT_NAPI_UTIL_H
#define PILOT_NAPI_UTIL_H

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

/*
 * Calls `cb(argv...)` from a libuv callback (not from inside JS): through
 * napi_make_callback, so the microtasks and next-ticks queued by it run right
 * after, as after any I/O callback, with the global as `this` (make_callback
 * needs an object). A throw surfaces as an uncaught exception, as it would
 * from a node I/O callback; the JS side catches its handlers' errors itself.
 */
static void call_js_from_loop(napi_env env, napi_async_context async, napi_value cb, size_t argc, const napi_value *argv) {
  napi_value global, result;
  bool pending = false;
  if (napi_get_global(env, &global) != napi_ok || napi_make_callback(env, async, global, cb, argc, argv, &result) != napi_ok) {
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value e;
      napi_get_and_clear_last_exception(env, &e);
      napi_fatal_exception(env, e);
    }
  }
}

#endif
