/*
 * pilot_datapath: the per-packet work of the tunnel that costs too much in
 * JavaScript (issue 12): AES-256-GCM with a key schedule set up once per key,
 * and UDP sends in batches with sendmmsg(2). Plain C against node_api.h.
 *
 * OpenSSL is the one Node itself carries: node exports its libcrypto symbols
 * and ships the headers (include/node/openssl), so the addon links against
 * nothing and uses exactly the AES-GCM that node:crypto uses.
 *
 * Exports
 *   aeadNew(key)                                   -> handle (32-byte key copied into two
 *                                                     EVP contexts, seal and open)
 *   aeadSeal(h, nonce, aad|null, pt, out, off)     -> bytes written (pt.length + 16)
 *   aeadOpen(h, nonce, aad|null, ct, out, off)     -> plaintext length, or -1
 *   sockaddr(host, port)                           -> Buffer (sockaddr_in / sockaddr_in6)
 *   sendBatch(fd, arena, offsets, lengths, addrs, addrOffsets, count)
 *                                                  -> datagrams handed to the kernel, or
 *                                                     -errno when none was
 *
 * Ownership: every byte array is read during the call only; nothing is kept.
 * Errors from misuse (wrong sizes, bad types) throw a TypeError/RangeError;
 * a frame that fails authentication is a -1, not an exception.
 */
#define _GNU_SOURCE
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define KEY_SIZE 32
#define NONCE_SIZE 12
#define TAG_SIZE 16
#define MAX_SEND_BATCH 256

typedef struct aead_ctx {
  EVP_CIPHER_CTX *seal;
  EVP_CIPHER_CTX *open;
  /* open() decrypts here first: the caller's buffer is written only after the tag checks,
   * so an in-place open that fails leaves the frame intact for a second try with another key. */
  uint8_t *scratch;
  size_t scratch_size;
} aead_ctx;

static void throw_type(napi_env env, const char *msg) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg); }
static void throw_range(napi_env env, const char *msg) { napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg); }

/* A Uint8Array/Buffer/DataView or ArrayBuffer as (pointer, length). 0 on success. */
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
    *data = p;
    *len = n * elem;
    return 0;
  }
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    void *p;
    if (napi_get_arraybuffer_info(env, v, &p, len) != napi_ok) return -1;
    *data = p;
    return 0;
  }
  if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    void *p;
    napi_value ab;
    size_t off;
    if (napi_get_dataview_info(env, v, len, &p, &ab, &off) != napi_ok) return -1;
    *data = p;
    return 0;
  }
  return -1;
}

static int get_u32_array(napi_env env, napi_value v, uint32_t **out, size_t *n) {
  napi_typedarray_type type;
  size_t off;
  void *p;
  napi_value ab;
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return -1;
  if (napi_get_typedarray_info(env, v, &type, n, &p, &ab, &off) != napi_ok || type != napi_uint32_array) return -1;
  *out = p;
  return 0;
}

static void finalize_aead(napi_env env, void *data, void *hint) {
  aead_ctx *c = data;
  EVP_CIPHER_CTX_free(c->seal); /* frees and cleanses the expanded key */
  EVP_CIPHER_CTX_free(c->open);
  if (c->scratch) {
    OPENSSL_cleanse(c->scratch, c->scratch_size);
    free(c->scratch);
  }
  free(c);
}

static aead_ctx *get_aead(napi_env env, napi_value v) {
  void *p = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    throw_type(env, "expected an AEAD handle from aeadNew()");
    return NULL;
  }
  return p;
}

static napi_value js_aead_new(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t *key;
  size_t key_len;
  if (argc < 1 || get_bytes(env, argv[0], &key, &key_len) != 0) {
    throw_type(env, "aeadNew(key): key must be a Uint8Array");
    return NULL;
  }
  if (key_len != KEY_SIZE) {
    throw_range(env, "aeadNew(key): an AES-256 key is 32 bytes");
    return NULL;
  }
  aead_ctx *c = calloc(1, sizeof *c);
  if (c == NULL) {
    napi_throw_error(env, "ENOMEM", "aeadNew: out of memory");
    return NULL;
  }
  c->seal = EVP_CIPHER_CTX_new();
  c->open = EVP_CIPHER_CTX_new();
  int ok = c->seal != NULL && c->open != NULL &&
           EVP_EncryptInit_ex(c->seal, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
           EVP_CIPHER_CTX_ctrl(c->seal, EVP_CTRL_GCM_SET_IVLEN, NONCE_SIZE, NULL) == 1 &&
           EVP_EncryptInit_ex(c->seal, NULL, NULL, key, NULL) == 1 &&
           EVP_DecryptInit_ex(c->open, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
           EVP_CIPHER_CTX_ctrl(c->open, EVP_CTRL_GCM_SET_IVLEN, NONCE_SIZE, NULL) == 1 &&
           EVP_DecryptInit_ex(c->open, NULL, NULL, key, NULL) == 1;
  if (!ok) {
    finalize_aead(env, c, NULL);
    napi_throw_error(env, "PT_CRYPTO_NATIVE", "aeadNew: OpenSSL refused the AES-256-GCM key set-up");
    return NULL;
  }
  napi_value ext;
  if (napi_create_external(env, c, finalize_aead, NULL, &ext) != napi_ok) {
    finalize_aead(env, c, NULL);
    return NULL;
  }
  return ext;
}

/* Shared argument parsing of seal/open: (h, nonce, aad|null, input, out, outOffset). */
typedef struct crypt_args {
  aead_ctx *c;
  uint8_t *nonce, *aad, *in, *out;
  size_t aad_len, in_len, out_len;
  uint32_t out_off;
} crypt_args;

static int parse_crypt_args(napi_env env, napi_callback_info info, crypt_args *a, const char *fn) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 6) {
    throw_type(env, "expected (handle, nonce, aad, input, out, outOffset)");
    return -1;
  }
  a->c = get_aead(env, argv[0]);
  if (a->c == NULL) return -1;
  size_t nonce_len;
  if (get_bytes(env, argv[1], &a->nonce, &nonce_len) != 0 || nonce_len != NONCE_SIZE) {
    throw_range(env, "the nonce must be 12 bytes");
    return -1;
  }
  napi_valuetype t;
  napi_typeof(env, argv[2], &t);
  a->aad = NULL;
  a->aad_len = 0;
  if (t != napi_null && t != napi_undefined && get_bytes(env, argv[2], &a->aad, &a->aad_len) != 0) {
    throw_type(env, "aad must be a Uint8Array or null");
    return -1;
  }
  if (get_bytes(env, argv[3], &a->in, &a->in_len) != 0 || get_bytes(env, argv[4], &a->out, &a->out_len) != 0) {
    throw_type(env, "input and out must be Uint8Arrays");
    return -1;
  }
  if (napi_get_value_uint32(env, argv[5], &a->out_off) != napi_ok) {
    throw_type(env, "outOffset must be a number");
    return -1;
  }
  (void)fn;
  return 0;
}

static napi_value make_int(napi_env env, int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}

static napi_value js_aead_seal(napi_env env, napi_callback_info info) {
  crypt_args a;
  if (parse_crypt_args(env, info, &a, "aeadSeal") != 0) return NULL;
  size_t total = a.in_len + TAG_SIZE;
  if ((size_t)a.out_off + total > a.out_len || a.in_len > INT32_MAX - TAG_SIZE) {
    throw_range(env, "aeadSeal: out is too small for ciphertext and tag");
    return NULL;
  }
  EVP_CIPHER_CTX *x = a.c->seal;
  uint8_t *dst = a.out + a.out_off;
  int n = 0, fin = 0;
  /* Only the IV changes per frame: the expanded key stays in the context. In place works when
   * dst == in (EVP handles exact overlap). */
  int ok = EVP_EncryptInit_ex(x, NULL, NULL, NULL, a.nonce) == 1 &&
           (a.aad == NULL || EVP_EncryptUpdate(x, NULL, &n, a.aad, (int)a.aad_len) == 1) &&
           EVP_EncryptUpdate(x, dst, &n, a.in, (int)a.in_len) == 1 &&
           EVP_EncryptFinal_ex(x, dst + n, &fin) == 1 &&
           EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, TAG_SIZE, dst + a.in_len) == 1;
  if (!ok) {
    napi_throw_error(env, "PT_CRYPTO_NATIVE", "aeadSeal: OpenSSL failed");
    return NULL;
  }
  return make_int(env, (int64_t)total);
}

static napi_value js_aead_open(napi_env env, napi_callback_info info) {
  crypt_args a;
  if (parse_crypt_args(env, info, &a, "aeadOpen") != 0) return NULL;
  if (a.in_len < TAG_SIZE) return make_int(env, -1);
  size_t len = a.in_len - TAG_SIZE;
  if ((size_t)a.out_off + len > a.out_len || len > INT32_MAX) return make_int(env, -1);
  aead_ctx *c = a.c;
  if (c->scratch_size < len) {
    size_t want = len < 2048 ? 2048 : len;
    uint8_t *p = malloc(want);
    if (p == NULL) {
      napi_throw_error(env, "ENOMEM", "aeadOpen: out of memory");
      return NULL;
    }
    if (c->scratch) {
      OPENSSL_cleanse(c->scratch, c->scratch_size);
      free(c->scratch);
    }
    c->scratch = p;
    c->scratch_size = want;
  }
  EVP_CIPHER_CTX *x = c->open;
  int n = 0, fin = 0;
  int ok = EVP_DecryptInit_ex(x, NULL, NULL, NULL, a.nonce) == 1 &&
           (a.aad == NULL || EVP_DecryptUpdate(x, NULL, &n, a.aad, (int)a.aad_len) == 1) &&
           EVP_DecryptUpdate(x, c->scratch, &n, a.in, (int)len) == 1 &&
           EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, TAG_SIZE, a.in + len) == 1 &&
           EVP_DecryptFinal_ex(x, c->scratch + n, &fin) == 1;
  if (!ok) return make_int(env, -1);
  memcpy(a.out + a.out_off, c->scratch, len);
  return make_int(env, (int64_t)len);
}

static napi_value js_sockaddr(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char host[INET6_ADDRSTRLEN + 1];
  size_t host_len = 0;
  uint32_t port;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], host, sizeof host, &host_len) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &port) != napi_ok) {
    throw_type(env, "sockaddr(host, port): host must be a string, port a number");
    return NULL;
  }
  if (port > 65535) {
    throw_range(env, "sockaddr: port out of range");
    return NULL;
  }
  napi_value result;
  void *data;
  struct sockaddr_in v4;
  struct sockaddr_in6 v6;
  memset(&v4, 0, sizeof v4);
  memset(&v6, 0, sizeof v6);
  if (inet_pton(AF_INET, host, &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons((uint16_t)port);
    if (napi_create_buffer_copy(env, sizeof v4, &v4, &data, &result) != napi_ok) return NULL;
    return result;
  }
  if (inet_pton(AF_INET6, host, &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons((uint16_t)port);
    if (napi_create_buffer_copy(env, sizeof v6, &v6, &data, &result) != napi_ok) return NULL;
    return result;
  }
  napi_value undef;
  napi_get_undefined(env, &undef);
  return undef; /* not an IP literal: the caller keeps its other path */
}

/*
 * sendBatch(fd, arena, offsets, lengths, addrs, addrOffsets, count): datagram i is
 * arena[offsets[i] .. +lengths[i]] to the sockaddr at addrs[addrOffsets[i]]
 * (its length from its family). One sendmmsg per 256 datagrams. A datagram the
 * kernel refuses for its own reason (no route, bad address) is skipped and counted
 * by the caller from the difference; EAGAIN/ENOBUFS stop the batch, and the return
 * value tells the caller where to resume.
 *
 * Returns the number of datagrams consumed (sent or skipped), or -errno when the
 * first one hit EAGAIN/ENOBUFS. Skipped ones are reported through `skipped`, a
 * Uint32Array(1) the caller passes as the 8th argument (optional).
 */
static napi_value js_send_batch(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  uint32_t count;
  uint8_t *arena, *addrs;
  size_t arena_len, addrs_len, n_off, n_len, n_aoff, n_skipped = 0;
  uint32_t *offsets, *lengths, *addr_offsets, *skipped = NULL;
  if (argc < 7 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || get_bytes(env, argv[1], &arena, &arena_len) != 0 ||
      get_u32_array(env, argv[2], &offsets, &n_off) != 0 || get_u32_array(env, argv[3], &lengths, &n_len) != 0 ||
      get_bytes(env, argv[4], &addrs, &addrs_len) != 0 || get_u32_array(env, argv[5], &addr_offsets, &n_aoff) != 0 ||
      napi_get_value_uint32(env, argv[6], &count) != napi_ok) {
    throw_type(env, "sendBatch(fd, arena, offsets, lengths, addrs, addrOffsets, count)");
    return NULL;
  }
  if (argc >= 8) {
    napi_valuetype t;
    napi_typeof(env, argv[7], &t);
    if (t != napi_undefined && get_u32_array(env, argv[7], &skipped, &n_skipped) != 0) {
      throw_type(env, "sendBatch: skipped must be a Uint32Array");
      return NULL;
    }
  }
  if (count > n_off || count > n_len || count > n_aoff) {
    throw_range(env, "sendBatch: count exceeds the offset arrays");
    return NULL;
  }
  struct mmsghdr msgs[MAX_SEND_BATCH];
  struct iovec iov[MAX_SEND_BATCH];
  uint32_t done = 0, skips = 0;
  while (done < count) {
    uint32_t n = count - done < MAX_SEND_BATCH ? count - done : MAX_SEND_BATCH;
    for (uint32_t i = 0; i < n; i++) {
      uint32_t k = done + i;
      uint32_t ao = addr_offsets[k];
      if ((size_t)offsets[k] + lengths[k] > arena_len || (size_t)ao + sizeof(sa_family_t) > addrs_len) {
        throw_range(env, "sendBatch: a datagram or address lies outside its buffer");
        return NULL;
      }
      struct sockaddr *sa = (struct sockaddr *)(addrs + ao);
      socklen_t sl = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
      if ((size_t)ao + sl > addrs_len) {
        throw_range(env, "sendBatch: an address lies outside its buffer");
        return NULL;
      }
      iov[i].iov_base = arena + offsets[k];
      iov[i].iov_len = lengths[k];
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_name = sa;
      msgs[i].msg_hdr.msg_namelen = sl;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int r;
    do {
      r = sendmmsg(fd, msgs, n, MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) {
        if (skipped != NULL && n_skipped > 0) skipped[0] = skips;
        return make_int(env, done == 0 ? -e : (int64_t)done);
      }
      /* The first datagram of this call was refused for its own reason: skip it. */
      done++;
      skips++;
      continue;
    }
    done += (uint32_t)r;
  }
  if (skipped != NULL && n_skipped > 0) skipped[0] = skips;
  return make_int(env, (int64_t)done);
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"aeadNew", NULL, js_aead_new, NULL, NULL, NULL, napi_default, NULL},
      {"aeadSeal", NULL, js_aead_seal, NULL, NULL, NULL, napi_default, NULL},
      {"aeadOpen", NULL, js_aead_open, NULL, NULL, NULL, napi_default, NULL},
      {"sockaddr", NULL, js_sockaddr, NULL, NULL, NULL, napi_default, NULL},
      {"sendBatch", NULL, js_send_batch, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
