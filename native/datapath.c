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
 *   sendBatch(fd, arena, offsets, lengths, addrs, addrOffsets, count, result, flags)
 *                                                  -> datagrams handed to the kernel, or
 *                                                     -errno when none was (UDP GSO when
 *                                                     flags & 1)
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

#include "napi-util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
 * sendBatch(fd, arena, offsets, lengths, addrs, addrOffsets, count, result, flags):
 * datagram i is arena[offsets[i] .. +lengths[i]] to the sockaddr at
 * addrs[addrOffsets[i]] (its length from its family). One sendmmsg per 256
 * messages.
 *
 * With flags & 1 (UDP GSO), a run of datagrams that lie back to back in the
 * arena, go to the same address and have the same length (the last may be
 * shorter) leaves as ONE message with a UDP_SEGMENT control message: the
 * kernel carries it through the stack as one packet and cuts it into the same
 * datagrams at the last moment (or hands it whole to a receiver that asked for
 * GRO). Nothing changes on the wire. At most 64 segments and 65,000 bytes.
 *
 * A datagram the kernel refuses for its own reason (no route, wrong family) is
 * skipped and counted in result[0]. When a GSO message is refused, the call
 * goes on without GSO; if the refusal means "this socket or route cannot do
 * GSO" (EIO, EINVAL, EOPNOTSUPP), result[1] is set so the caller stops asking.
 * EAGAIN/ENOBUFS stop the batch: the return value tells the caller where to
 * resume.
 *
 * Returns the number of datagrams consumed (sent or skipped), or -errno when
 * the first one hit EAGAIN/ENOBUFS.
 */
#define GSO_MAX_SEGMENTS 64
#define GSO_MAX_BYTES 65000

typedef struct send_group {
  uint32_t first, n;
} send_group;

static struct sockaddr *addr_at(uint8_t *addrs, size_t addrs_len, uint32_t ao, socklen_t *sl) {
  if ((size_t)ao + sizeof(sa_family_t) > addrs_len) return NULL;
  struct sockaddr *sa = (struct sockaddr *)(addrs + ao);
  *sl = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if ((size_t)ao + *sl > addrs_len) return NULL;
  return sa;
}

static napi_value js_send_batch(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  uint32_t count, flags = 0;
  uint8_t *arena, *addrs;
  size_t arena_len, addrs_len, n_off, n_len, n_aoff, n_result = 0;
  uint32_t *offsets, *lengths, *addr_offsets, *result = NULL;
  if (argc < 7 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || get_bytes(env, argv[1], &arena, &arena_len) != 0 ||
      get_u32s(env, argv[2], &offsets, &n_off) != 0 || get_u32s(env, argv[3], &lengths, &n_len) != 0 ||
      get_bytes(env, argv[4], &addrs, &addrs_len) != 0 || get_u32s(env, argv[5], &addr_offsets, &n_aoff) != 0 ||
      napi_get_value_uint32(env, argv[6], &count) != napi_ok) {
    throw_type(env, "sendBatch(fd, arena, offsets, lengths, addrs, addrOffsets, count, result?, flags?)");
    return NULL;
  }
  if (argc >= 8) {
    napi_valuetype t;
    napi_typeof(env, argv[7], &t);
    if (t != napi_undefined && (get_u32s(env, argv[7], &result, &n_result) != 0 || n_result < 2)) {
      throw_type(env, "sendBatch: result must be a Uint32Array(2)");
      return NULL;
    }
  }
  if (argc >= 9 && napi_get_value_uint32(env, argv[8], &flags) != napi_ok) flags = 0;
  if (count > n_off || count > n_len || count > n_aoff) {
    throw_range(env, "sendBatch: count exceeds the offset arrays");
    return NULL;
  }
  for (uint32_t k = 0; k < count; k++) {
    socklen_t sl;
    if ((size_t)offsets[k] + lengths[k] > arena_len || addr_at(addrs, addrs_len, addr_offsets[k], &sl) == NULL) {
      throw_range(env, "sendBatch: a datagram or address lies outside its buffer");
      return NULL;
    }
  }
  int gso = (flags & 1) != 0;
  struct mmsghdr msgs[MAX_SEND_BATCH];
  struct iovec iov[MAX_SEND_BATCH];
  send_group groups[MAX_SEND_BATCH];
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } control[MAX_SEND_BATCH];
  uint32_t done = 0, skips = 0, gso_off = 0;
  while (done < count) {
    uint32_t m = 0, k = done;
    while (m < MAX_SEND_BATCH && k < count) {
      socklen_t sl = 0;
      struct sockaddr *sa = addr_at(addrs, addrs_len, addr_offsets[k], &sl);
      uint32_t n = 1, seg = lengths[k];
      size_t bytes = seg;
      while (gso && k + n < count && n < GSO_MAX_SEGMENTS) {
        uint32_t j = k + n;
        socklen_t sl2 = 0;
        struct sockaddr *sa2 = addr_at(addrs, addrs_len, addr_offsets[j], &sl2);
        if (lengths[j - 1] != seg || lengths[j] > seg || lengths[j] == 0 || offsets[j] != offsets[j - 1] + lengths[j - 1] ||
            bytes + lengths[j] > GSO_MAX_BYTES || sl2 != sl || memcmp(sa, sa2, sl) != 0)
          break;
        bytes += lengths[j];
        n++;
      }
      iov[m].iov_base = arena + offsets[k];
      iov[m].iov_len = bytes;
      memset(&msgs[m], 0, sizeof msgs[m]);
      msgs[m].msg_hdr.msg_name = sa;
      msgs[m].msg_hdr.msg_namelen = sl;
      msgs[m].msg_hdr.msg_iov = &iov[m];
      msgs[m].msg_hdr.msg_iovlen = 1;
      if (n > 1) {
        msgs[m].msg_hdr.msg_control = control[m].buf;
        msgs[m].msg_hdr.msg_controllen = sizeof control[m].buf;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msgs[m].msg_hdr);
        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t size = (uint16_t)seg;
        memcpy(CMSG_DATA(cm), &size, sizeof size);
      }
      groups[m].first = k;
      groups[m].n = n;
      m++;
      k += n;
    }
    int r;
    do {
      r = sendmmsg(fd, msgs, m, MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) {
        if (result != NULL) {
          result[0] = skips;
          result[1] = gso_off;
        }
        return make_int(env, done == 0 ? -e : (int64_t)done);
      }
      if (groups[0].n > 1) {
        /* Refused as a GSO message: send the same datagrams one by one. */
        gso = 0;
        if (e == EIO || e == EINVAL || e == EOPNOTSUPP) gso_off = 1;
        continue;
      }
      done++; /* this datagram was refused for its own reason: skip it */
      skips++;
      continue;
    }
    for (int i = 0; i < r; i++) done += groups[i].n;
  }
  if (result != NULL) {
    result[0] = skips;
    result[1] = gso_off;
  }
  return make_int(env, (int64_t)done);
}


/* ---------- receiving: recvmmsg + UDP GRO on the event loop's own thread ---------- */

/*
 * udpRecvStart(fd, callback, opts) -> handle; udpRecvStop(handle, onClosed?):
 * onClosed() runs once the dup is closed (on a later loop turn), i.e. when the
 * port is free if nothing else holds the socket.
 *
 * The socket (node's dgram fd, whose own reading the caller has stopped) is
 * dup()ed and watched with a uv_poll on the JS thread's loop: no reader
 * thread, so a lone datagram costs no thread hand-off. When it is readable,
 * recvmmsg drains up to `batch` messages per call (and up to `rounds` calls);
 * with UDP_GRO the kernel may hand over a run of equal-sized datagrams of one
 * sender as one message, cut here at the segment size it reports. Each round
 * becomes one JS call:
 *
 *   callback(block: ArrayBuffer, count, hosts: string[])
 *     block = u32 meta[count * 4] (offset, length, host index, port), then the
 *     datagrams; offsets from the start of block. Nothing else refers to block.
 */
#include <uv.h>

#define RECV_SLOT 65536
#define RECV_MAX_BATCH 64
#define RECV_MAX_HOSTS 16

typedef struct udp_receiver {
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  uv_poll_t poll;
  int fd; /* our dup */
  int gro;
  uint32_t batch, rounds;
  uint8_t *staging; /* batch * RECV_SLOT */
  struct mmsghdr msgs[RECV_MAX_BATCH];
  struct iovec iov[RECV_MAX_BATCH];
  struct sockaddr_storage from[RECV_MAX_BATCH];
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control[RECV_MAX_BATCH];
  int stopped;
  uint64_t errors;
  uint64_t truncated;
  napi_ref on_closed; /* udpRecvStop's callback, called once the dup is closed */
} udp_receiver;

static void free_block(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static void receiver_closed(uv_handle_t *h) {
  udp_receiver *r = h->data;
  if (r->fd >= 0) close(r->fd);
  free(r->staging);
  napi_env env = r->env;
  napi_ref done = r->on_closed;
  napi_async_context async = r->async;
  free(r);
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (done != NULL) {
    /* The dup is closed: the port is free again. Tell JS (its close() waits for this); through
     * make_callback so that the promise it settles runs its reactions now. */
    napi_value cb;
    if (napi_get_reference_value(env, done, &cb) == napi_ok && cb != NULL) call_js_from_loop(env, async, cb, 0, NULL);
    napi_delete_reference(env, done);
  }
  napi_async_destroy(env, async);
  napi_close_handle_scope(env, scope);
}

static int gro_size(struct msghdr *m) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      int v;
      memcpy(&v, CMSG_DATA(c), sizeof v);
      return v;
    }
  }
  return 0;
}

/* Delivers one recvmmsg round (n messages) to JS. Returns 0, or -1 when the receiver stopped meanwhile. */
static int deliver(udp_receiver *r, int n) {
  uint32_t count = 0;
  size_t bytes = 0;
  for (int i = 0; i < n; i++) {
    /* Cut short by our buffer (a GRO run past 64 KiB): its tail is lost, so is all of it. The peer
     * resends what matters, as after any loss. */
    if (r->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) r->msgs[i].msg_len = 0, r->truncated++;
    size_t len = r->msgs[i].msg_len;
    int seg = r->gro ? gro_size(&r->msgs[i].msg_hdr) : 0;
    count += seg > 0 && len > (size_t)seg ? (uint32_t)((len + seg - 1) / seg) : 1;
    bytes += len;
  }
  size_t head = (size_t)count * 16;
  uint8_t *block = malloc(head + bytes);
  if (block == NULL) return 0; /* dropped, as the kernel would */
  uint32_t *meta = (uint32_t *)block;
  size_t at = head;
  uint32_t k = 0;
  char hosts[RECV_MAX_HOSTS][INET6_ADDRSTRLEN];
  struct sockaddr_storage host_addr[RECV_MAX_HOSTS];
  uint32_t n_hosts = 0;
  for (int i = 0; i < n; i++) {
    struct sockaddr_storage *sa = &r->from[i];
    uint32_t port = 0, hi = UINT32_MAX;
    for (uint32_t h = 0; h < n_hosts; h++) {
      int same = sa->ss_family == host_addr[h].ss_family &&
                 (sa->ss_family == AF_INET
                      ? ((struct sockaddr_in *)sa)->sin_addr.s_addr == ((struct sockaddr_in *)&host_addr[h])->sin_addr.s_addr
                      : memcmp(&((struct sockaddr_in6 *)sa)->sin6_addr, &((struct sockaddr_in6 *)&host_addr[h])->sin6_addr, 16) == 0);
      if (same) {
        hi = h;
        break;
      }
    }
    if (hi == UINT32_MAX) {
      hi = n_hosts < RECV_MAX_HOSTS ? n_hosts++ : RECV_MAX_HOSTS - 1;
      host_addr[hi] = *sa;
      const void *a = sa->ss_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)sa)->sin6_addr
                                                : (const void *)&((struct sockaddr_in *)sa)->sin_addr;
      if (inet_ntop(sa->ss_family == AF_INET6 ? AF_INET6 : AF_INET, a, hosts[hi], sizeof hosts[hi]) == NULL) hosts[hi][0] = 0;
    }
    port = ntohs(sa->ss_family == AF_INET6 ? ((struct sockaddr_in6 *)sa)->sin6_port : ((struct sockaddr_in *)sa)->sin_port);
    size_t len = r->msgs[i].msg_len;
    int seg = r->gro ? gro_size(&r->msgs[i].msg_hdr) : 0;
    size_t step = seg > 0 ? (size_t)seg : (len > 0 ? len : 1);
    uint8_t *src = r->staging + (size_t)i * RECV_SLOT;
    memcpy(block + at, src, len);
    size_t off = 0;
    do {
      size_t piece = len - off < step ? len - off : step;
      meta[k * 4] = (uint32_t)(at + off);
      meta[k * 4 + 1] = (uint32_t)piece;
      meta[k * 4 + 2] = hi;
      meta[k * 4 + 3] = port;
      k++;
      off += piece;
    } while (off < len);
    at += len;
  }
  napi_env env = r->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) {
    free(block);
    return 0;
  }
  napi_value argv[3], cb;
  int ok = napi_create_external_arraybuffer(env, block, head + bytes, free_block, NULL, &argv[0]) == napi_ok;
  if (!ok) free(block);
  ok = ok && napi_create_uint32(env, k, &argv[1]) == napi_ok && napi_create_array_with_length(env, n_hosts, &argv[2]) == napi_ok;
  for (uint32_t h = 0; ok && h < n_hosts; h++) {
    napi_value s;
    ok = napi_create_string_latin1(env, hosts[h], NAPI_AUTO_LENGTH, &s) == napi_ok && napi_set_element(env, argv[2], h, s) == napi_ok;
  }
  ok = ok && napi_get_reference_value(env, r->callback, &cb) == napi_ok && cb != NULL;
  if (ok) {
    call_js_from_loop(env, r->async, cb, 3, argv);
  } else {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value e;
      napi_get_and_clear_last_exception(env, &e); /* never leave one for the next, unrelated call */
    }
  }
  napi_close_handle_scope(env, scope);
  return r->stopped ? -1 : 0;
}

static void on_readable(uv_poll_t *p, int status, int events) {
  udp_receiver *r = p->data;
  if (status < 0 || r->stopped) return;
  for (uint32_t round = 0; round < r->rounds; round++) {
    for (uint32_t i = 0; i < r->batch; i++) {
      r->iov[i].iov_base = r->staging + (size_t)i * RECV_SLOT;
      r->iov[i].iov_len = RECV_SLOT;
      memset(&r->msgs[i].msg_hdr, 0, sizeof r->msgs[i].msg_hdr);
      r->msgs[i].msg_hdr.msg_name = &r->from[i];
      r->msgs[i].msg_hdr.msg_namelen = sizeof r->from[i];
      r->msgs[i].msg_hdr.msg_iov = &r->iov[i];
      r->msgs[i].msg_hdr.msg_iovlen = 1;
      if (r->gro) {
        r->msgs[i].msg_hdr.msg_control = r->control[i].buf;
        r->msgs[i].msg_hdr.msg_controllen = sizeof r->control[i].buf;
      }
    }
    int n;
    do {
      n = recvmmsg(r->fd, r->msgs, r->batch, MSG_DONTWAIT, NULL);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) r->errors++;
      return;
    }
    if (deliver(r, n) != 0) return;
    if ((uint32_t)n < r->batch) return; /* drained */
  }
}

static udp_receiver *get_receiver(napi_env env, napi_value v) {
  void *p = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    throw_type(env, "expected a receiver handle from udpRecvStart()");
    return NULL;
  }
  return p;
}

static void stop_receiver(udp_receiver *r) {
  if (r->stopped) return;
  r->stopped = 1;
  uv_poll_stop(&r->poll);
  napi_delete_reference(r->env, r->callback);
  uv_close((uv_handle_t *)&r->poll, receiver_closed);
}

static napi_value js_udp_recv_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  napi_valuetype t;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function) {
    throw_type(env, "udpRecvStart(fd, callback, { batch, rounds, gro })");
    return NULL;
  }
  uint32_t batch = 32, rounds = 4;
  bool gro = true;
  if (argc >= 3 && napi_typeof(env, argv[2], &t) == napi_ok && t == napi_object) {
    napi_value v;
    bool has;
    if (napi_has_named_property(env, argv[2], "batch", &has) == napi_ok && has && napi_get_named_property(env, argv[2], "batch", &v) == napi_ok)
      napi_get_value_uint32(env, v, &batch);
    if (napi_has_named_property(env, argv[2], "rounds", &has) == napi_ok && has && napi_get_named_property(env, argv[2], "rounds", &v) == napi_ok)
      napi_get_value_uint32(env, v, &rounds);
    if (napi_has_named_property(env, argv[2], "gro", &has) == napi_ok && has && napi_get_named_property(env, argv[2], "gro", &v) == napi_ok)
      napi_get_value_bool(env, v, &gro);
  }
  if (batch < 1) batch = 1;
  if (batch > RECV_MAX_BATCH) batch = RECV_MAX_BATCH;
  if (rounds < 1) rounds = 1;
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    napi_throw_error(env, "PT_NATIVE", "udpRecvStart: no event loop");
    return NULL;
  }
  udp_receiver *r = calloc(1, sizeof *r);
  if (r == NULL || (r->staging = malloc((size_t)batch * RECV_SLOT)) == NULL) {
    free(r);
    napi_throw_error(env, "ENOMEM", "udpRecvStart: out of memory");
    return NULL;
  }
  r->env = env;
  r->batch = batch;
  r->rounds = rounds;
  r->fd = dup(fd);
  if (r->fd < 0) {
    int e = errno;
    free(r->staging);
    free(r);
    napi_throw_error(env, "PT_NATIVE", e == EBADF ? "udpRecvStart: bad socket fd" : "udpRecvStart: dup failed");
    return NULL;
  }
  int one = 1;
  r->gro = gro && setsockopt(r->fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
  napi_value name;
  napi_create_string_utf8(env, "pilot-udp-receive", NAPI_AUTO_LENGTH, &name);
  if (napi_create_reference(env, argv[1], 1, &r->callback) != napi_ok || napi_async_init(env, NULL, name, &r->async) != napi_ok ||
      uv_poll_init(loop, &r->poll, r->fd) != 0) {
    close(r->fd);
    free(r->staging);
    free(r);
    napi_throw_error(env, "PT_NATIVE", "udpRecvStart: cannot watch the socket");
    return NULL;
  }
  r->poll.data = r;
  uv_poll_start(&r->poll, UV_READABLE, on_readable);
  napi_value ext, obj, g;
  /* No finalizer: the receiver lives until udpRecvStop (the bind's close) or the process ends. */
  napi_create_external(env, r, NULL, NULL, &ext);
  napi_create_object(env, &obj);
  napi_set_named_property(env, obj, "handle", ext);
  napi_get_boolean(env, r->gro != 0, &g);
  napi_set_named_property(env, obj, "gro", g);
  return obj;
}

static napi_value js_udp_recv_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  size_t argc2 = 2;
  napi_value argv2[2];
  napi_get_cb_info(env, info, &argc2, argv2, NULL, NULL);
  udp_receiver *r = argc < 1 ? NULL : get_receiver(env, argv[0]);
  if (r == NULL || r->stopped) return NULL;
  napi_valuetype t;
  if (argc2 >= 2 && napi_typeof(env, argv2[1], &t) == napi_ok && t == napi_function) napi_create_reference(env, argv2[1], 1, &r->on_closed);
  stop_receiver(r);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"aeadNew", NULL, js_aead_new, NULL, NULL, NULL, napi_default, NULL},
      {"aeadSeal", NULL, js_aead_seal, NULL, NULL, NULL, napi_default, NULL},
      {"aeadOpen", NULL, js_aead_open, NULL, NULL, NULL, napi_default, NULL},
      {"sockaddr", NULL, js_sockaddr, NULL, NULL, NULL, napi_default, NULL},
      {"sendBatch", NULL, js_send_batch, NULL, NULL, NULL, napi_default, NULL},
      {"udpRecvStart", NULL, js_udp_recv_start, NULL, NULL, NULL, napi_default, NULL},
      {"udpRecvStop", NULL, js_udp_recv_stop, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
