/*
 * pilot_tun_native: the smallest possible bridge between a Linux TUN fd and
 * JavaScript. Plain C against node_api.h (no node-addon-api), built by
 * node-gyp from binding.gyp at the package root.
 *
 * Exports
 *   open(name)                        -> { handle, fd, name }
 *   startReader(handle, cb, opts)     -> undefined
 *       cb(arrayBuffer | null, count, errno) is called on the JS thread once per
 *       batch. arrayBuffer layout: u32 offsets[count], u32 lengths[count], then
 *       packet bytes; offsets are from the start of the ArrayBuffer. Every packet
 *       has opts.headroom free bytes before it and opts.tailroom after it, so a
 *       tunnel can prepend its header and append an AEAD tag in place.
 *       arrayBuffer === null means the reader stopped on error `errno`.
 *   writeBatch(handle, buffer, offsets, lengths, count) -> packets written
 *   close(handle)                     -> undefined (idempotent)
 *
 * Loop mode (opts.mode = 'loop'): no thread; a uv_poll on the JS thread's loop
 * reads a batch when the fd is readable and calls back from the poll phase.
 * One thread hand-off less per packet (the latency of a lone packet), at the
 * cost of the reads running on the JS thread.
 *
 * Threading: one reader pthread per device. It poll()s the TUN fd and an
 * eventfd (the shutdown doorbell), drains up to `batch` packets per wake-up
 * into a reused staging area, copies the used part into one exact-size block
 * and hands that block to JS through a napi_threadsafe_function as an external
 * ArrayBuffer (so the JS thread copies nothing). The queue between the thread
 * and JS is bounded: when JS falls behind, the thread blocks, the kernel's TUN
 * queue (txqueuelen) fills and the kernel drops, which is the backpressure we
 * want for an IP device.
 *
 * Shutdown order (close, GC finalizer, or environment teardown): set the stop
 * flag, ring the eventfd, abort the threadsafe function (this wakes a thread
 * blocked on a full queue), join the thread, then close the fds. Aborting
 * first is what makes joining on the JS thread deadlock-free. Batches still
 * queued are freed by call_js with env == NULL.
 *
 * Writes: the fd is O_NONBLOCK (the reader needs that to drain without
 * blocking). A TUN write never waits for queue space in practice (the tun
 * socket's sndbuf is INT_MAX and the packet is injected synchronously), so we
 * do one write() per packet with no retry loop: a packet that fails (EAGAIN,
 * EINVAL for a malformed packet, EIO when the link is down) is skipped and
 * the return value, the number written, lets JS count the drop.
 */
#define _GNU_SOURCE
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>

#include "napi-util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <uv.h>

#define DEFAULT_BATCH 64
#define MAX_BATCH 1024
#define DEFAULT_BUFFER 65536
#define DEFAULT_QUEUE 16
/* The staging area holds a batch; it is at least this big so that a batch of
 * small packets is never cut short by the room check for one maximal packet. */
#define MIN_STAGING (256 * 1024)

typedef struct tun_dev {
  int fd;
  int wake_fd; /* eventfd, -1 when no reader */
  char name[IFNAMSIZ];
  /* reader */
  int reader_running;
  int loop_mode;          /* 1: read on the JS thread's loop (uv_poll), no thread */
  uv_poll_t *poll;        /* loop mode; freed by its close callback */
  napi_ref loop_cb;       /* loop mode: the batch callback */
  napi_async_context loop_async;
  volatile int stop;
  pthread_t thread;
  napi_threadsafe_function tsfn;
  napi_env env;
  int cleanup_hook_added;
  uint32_t batch;
  uint32_t buffer_size;
  uint32_t headroom;
  uint32_t tailroom;
  uint8_t *staging;
  size_t staging_size;
  uint32_t *offsets; /* scratch, batch entries */
  uint32_t *lengths;
} tun_dev;

/* One item on the threadsafe queue. `block` becomes the ArrayBuffer. */
typedef struct tun_batch {
  uint8_t *block;
  size_t size;
  uint32_t count;
  int err;
} tun_batch;

/* ---------- small helpers ---------- */

static const char *errno_code(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EBUSY: return "EBUSY";
    case ENOENT: return "ENOENT";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case EBADFD: return "EBADFD";
    case EIO: return "EIO";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case EEXIST: return "EEXIST";
    default: return "EUNKNOWN";
  }
}

/* Throws an Error with .code (errno name), .errno and .syscall, like node's own. */
static void throw_errno(napi_env env, int e, const char *syscall, const char *message) {
  napi_value msg, err, code, num, sc;
  char text[256];
  snprintf(text, sizeof text, "%s (%s: %s)", message, syscall, strerror(e));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &err);
  napi_create_string_utf8(env, errno_code(e), NAPI_AUTO_LENGTH, &code);
  napi_create_int32(env, e, &num);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, err, "code", code);
  napi_set_named_property(env, err, "errno", num);
  napi_set_named_property(env, err, "syscall", sc);
  napi_throw(env, err);
}

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      bool pending = false;                                           \
      napi_is_exception_pending(env, &pending);                       \
      if (!pending) napi_throw_error(env, NULL, "N-API call failed: " #call); \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

static tun_dev *get_dev(napi_env env, napi_value v) {
  void *p = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) {
    napi_throw_type_error(env, NULL, "expected a TUN handle");
    return NULL;
  }
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, NULL, "expected a TUN handle");
    return NULL;
  }
  return (tun_dev *)p;
}

static uint32_t opt_u32(napi_env env, napi_value obj, const char *key, uint32_t dflt) {
  bool has = false;
  napi_value v;
  uint32_t out = dflt;
  if (obj == NULL) return dflt;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return dflt;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return dflt;
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_number) return dflt;
  napi_get_value_uint32(env, v, &out);
  return out;
}

/* ---------- shutdown ---------- */

static void free_reader_buffers(tun_dev *d) {
  if (d->wake_fd >= 0) close(d->wake_fd);
  d->wake_fd = -1;
  free(d->staging);
  free(d->offsets);
  free(d->lengths);
  d->staging = NULL;
  d->offsets = NULL;
  d->lengths = NULL;
}

static void free_poll(uv_handle_t *h) { free(h); }

static void stop_reader(tun_dev *d) {
  if (!d->reader_running) return;
  if (d->loop_mode) {
    /* uv_close stops the watcher and forgets the fd now (only its callback is deferred), so the
     * caller may close the fd right after this returns. */
    uv_close((uv_handle_t *)d->poll, free_poll);
    d->poll = NULL;
    napi_delete_reference(d->env, d->loop_cb);
    napi_async_destroy(d->env, d->loop_async);
    d->loop_cb = NULL;
    d->reader_running = 0;
    d->loop_mode = 0;
    free_reader_buffers(d);
    return;
  }
  d->stop = 1;
  uint64_t one = 1;
  ssize_t w = write(d->wake_fd, &one, sizeof one);
  (void)w;
  /* Abort before join: a thread blocked on a full queue wakes with napi_closing. */
  napi_release_threadsafe_function(d->tsfn, napi_tsfn_abort);
  pthread_join(d->thread, NULL);
  d->reader_running = 0;
  d->tsfn = NULL;
  free_reader_buffers(d);
}

static void env_cleanup(void *arg);

static void close_dev(tun_dev *d) {
  if (d->cleanup_hook_added) {
    napi_remove_env_cleanup_hook(d->env, env_cleanup, d);
    d->cleanup_hook_added = 0;
  }
  stop_reader(d);
  if (d->fd >= 0) {
    close(d->fd);
    d->fd = -1;
  }
}

/* Environment teardown (process exit, worker exit): stop the thread before the
 * threadsafe function's own cleanup runs. Hooks run in reverse order of
 * registration and ours is added after the TSFN is created. */
static void env_cleanup(void *arg) {
  tun_dev *d = (tun_dev *)arg;
  d->cleanup_hook_added = 0; /* we are being run; do not remove ourselves */
  stop_reader(d);
  if (d->fd >= 0) {
    close(d->fd);
    d->fd = -1;
  }
}

static void finalize_dev(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  tun_dev *d = (tun_dev *)data;
  close_dev(d);
  free(d);
}

/* ---------- open ---------- */

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char name[IFNAMSIZ + 1];
  size_t len = 0;
  napi_valuetype t = napi_undefined;
  if (argc >= 1) napi_typeof(env, argv[0], &t);
  if (t != napi_string) {
    napi_throw_type_error(env, NULL, "open(name): name must be a string");
    return NULL;
  }
  CHECK(napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len));
  if (len == 0 || len >= IFNAMSIZ) {
    napi_throw_range_error(env, NULL, "open(name): interface name must be 1..15 bytes");
    return NULL;
  }

  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    throw_errno(env, e, "open",
                e == EPERM || e == EACCES ? "cannot open /dev/net/tun: needs root or CAP_NET_ADMIN"
                : e == ENOENT || e == ENODEV ? "/dev/net/tun is missing: load the tun module (modprobe tun)"
                                             : "cannot open /dev/net/tun");
    return NULL;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  memcpy(ifr.ifr_name, name, len);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    throw_errno(env, e, "ioctl(TUNSETIFF)",
                e == EPERM ? "cannot create the TUN interface: needs root or CAP_NET_ADMIN"
                : e == EBUSY ? "the TUN interface is in use by another process"
                : e == EINVAL ? "an interface with this name exists and is not a TUN of this kind"
                              : "cannot create the TUN interface");
    return NULL;
  }

  tun_dev *d = (tun_dev *)calloc(1, sizeof *d);
  if (d == NULL) {
    close(fd);
    throw_errno(env, ENOMEM, "calloc", "out of memory");
    return NULL;
  }
  d->fd = fd;
  d->wake_fd = -1;
  d->env = env;
  memcpy(d->name, ifr.ifr_name, IFNAMSIZ);
  d->name[IFNAMSIZ - 1] = 0;

  napi_value out, handle, jfd, jname;
  if (napi_create_external(env, d, finalize_dev, NULL, &handle) != napi_ok) {
    close(fd);
    free(d);
    napi_throw_error(env, NULL, "napi_create_external failed");
    return NULL;
  }
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_int32(env, fd, &jfd));
  CHECK(napi_create_string_utf8(env, d->name, NAPI_AUTO_LENGTH, &jname));
  CHECK(napi_set_named_property(env, out, "handle", handle));
  CHECK(napi_set_named_property(env, out, "fd", jfd));
  CHECK(napi_set_named_property(env, out, "name", jname));
  return out;
}

/* ---------- reader ---------- */

static void free_batch_block(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

/* Runs on the JS thread, or with env == NULL while the TSFN is torn down. */
static void call_js(napi_env env, napi_value cb, void *context, void *data) {
  (void)context;
  tun_batch *b = (tun_batch *)data;
  if (env == NULL || cb == NULL) {
    free(b->block);
    free(b);
    return;
  }
  napi_value argv[3], undef;
  napi_get_undefined(env, &undef);
  if (b->err != 0) {
    napi_get_null(env, &argv[0]);
    napi_create_uint32(env, 0, &argv[1]);
    napi_create_int32(env, b->err, &argv[2]);
    free(b->block);
    free(b);
  } else {
    if (napi_create_external_arraybuffer(env, b->block, b->size, free_batch_block, NULL, &argv[0]) != napi_ok) {
      free(b->block);
      free(b);
      return;
    }
    napi_create_uint32(env, b->count, &argv[1]);
    napi_create_int32(env, 0, &argv[2]);
    free(b); /* the block now belongs to the ArrayBuffer */
  }
  /* An exception from the callback surfaces as an uncaught exception; the JS
   * wrapper catches handler errors itself so this is only for its own bugs. */
  napi_call_function(env, undef, cb, 3, argv, NULL);
}

static int post(tun_dev *d, tun_batch *b) {
  napi_status s = napi_call_threadsafe_function(d->tsfn, b, napi_tsfn_blocking);
  if (s != napi_ok) {
    free(b->block);
    free(b);
    return -1; /* napi_closing: we are shutting down */
  }
  return 0;
}

static void post_error(tun_dev *d, int e) {
  tun_batch *b = (tun_batch *)calloc(1, sizeof *b);
  if (b == NULL) return;
  b->err = e;
  post(d, b);
}

/* Reads up to `batch` packets (the fd is non-blocking) into the staging area and
 * returns them as one block (header: offsets then lengths, padded to 8; data
 * follows), or NULL when none were read or memory ran out. `*fatal` is set to
 * the errno of a read that means the device is gone. */
static tun_batch *drain(tun_dev *d, uint32_t *count_out, int *fatal) {
  const size_t room = d->headroom + d->buffer_size + d->tailroom;
  uint32_t count = 0;
  size_t used = 0;
  while (count < d->batch && d->staging_size - used >= room) {
    ssize_t n = read(d->fd, d->staging + used + d->headroom, d->buffer_size);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      *fatal = errno; /* EBADFD: the interface was deleted under us */
      break;
    }
    d->offsets[count] = (uint32_t)(used + d->headroom);
    d->lengths[count] = (uint32_t)n;
    used += (d->headroom + (size_t)n + d->tailroom + 7) & ~(size_t)7;
    count++;
  }
  *count_out = count;
  if (count == 0) return NULL;
  size_t header = ((size_t)count * 8 + 7) & ~(size_t)7;
  tun_batch *b = (tun_batch *)malloc(sizeof *b);
  uint8_t *block = (uint8_t *)malloc(header + used);
  if (b == NULL || block == NULL) {
    free(b);
    free(block); /* drop the batch; memory pressure is not a reason to stop */
    return NULL;
  }
  uint32_t *offs = (uint32_t *)block;
  uint32_t *lens = offs + count;
  for (uint32_t i = 0; i < count; i++) {
    offs[i] = (uint32_t)header + d->offsets[i];
    lens[i] = d->lengths[i];
  }
  memcpy(block + header, d->staging, used);
  b->block = block;
  b->size = header + used;
  b->count = count;
  b->err = 0;
  return b;
}

/* Loop mode: one JS call per batch, straight from the loop's poll phase (no thread hand-off). */
static void loop_call_js(tun_dev *d, tun_batch *b) {
  napi_env env = d->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) {
    free(b->block);
    free(b);
    return;
  }
  napi_value cb;
  if (napi_get_reference_value(env, d->loop_cb, &cb) == napi_ok && cb != NULL) {
    napi_value argv[3];
    int ok = 1;
    if (b->err != 0) {
      napi_get_null(env, &argv[0]);
      free(b->block);
    } else if (napi_create_external_arraybuffer(env, b->block, b->size, free_batch_block, NULL, &argv[0]) != napi_ok) {
      free(b->block);
      ok = 0;
    }
    if (ok) {
      napi_create_uint32(env, b->err != 0 ? 0 : b->count, &argv[1]);
      napi_create_int32(env, b->err, &argv[2]);
      call_js_from_loop(env, d->loop_async, cb, 3, argv);
    }
  } else {
    free(b->block);
  }
  free(b);
  napi_close_handle_scope(env, scope);
}

static void on_tun_readable(uv_poll_t *p, int status, int events) {
  tun_dev *d = (tun_dev *)p->data;
  if (d == NULL || !d->reader_running || !d->loop_mode) return;
  int fatal = status < 0 ? EBADFD : 0;
  if (fatal == 0) {
    uint32_t count = 0;
    tun_batch *b = drain(d, &count, &fatal);
    if (b != NULL) loop_call_js(d, b); /* may close the device: check again below */
    if (fatal == 0 && count == 0 && (events & UV_DISCONNECT)) fatal = EBADFD;
  }
  if (fatal != 0 && d->reader_running && d->loop_mode) {
    tun_batch *e = (tun_batch *)calloc(1, sizeof *e);
    uv_poll_stop(d->poll);
    if (e != NULL) {
      e->err = fatal;
      loop_call_js(d, e);
    }
  }
}

static void *reader_main(void *arg) {
  tun_dev *d = (tun_dev *)arg;
  struct pollfd pfd[2];
  pfd[0].fd = d->fd;
  pfd[0].events = POLLIN;
  pfd[1].fd = d->wake_fd;
  pfd[1].events = POLLIN;
  while (!d->stop) {
    int r = poll(pfd, 2, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      post_error(d, errno);
      break;
    }
    if (d->stop || (pfd[1].revents & POLLIN)) break;
    if (pfd[0].revents & POLLNVAL) {
      post_error(d, EBADF);
      break;
    }
    uint32_t count = 0;
    int fatal = 0;
    tun_batch *b = drain(d, &count, &fatal);
    if (b != NULL && post(d, b) != 0) break;
    if (fatal != 0) {
      post_error(d, fatal);
      break;
    }
    if (count == 0 && (pfd[0].revents & (POLLERR | POLLHUP))) {
      post_error(d, EBADFD);
      break;
    }
  }
  return NULL;
}

static napi_value js_start_reader(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "startReader(handle, callback, options)");
    return NULL;
  }
  tun_dev *d = get_dev(env, argv[0]);
  if (d == NULL) return NULL;
  napi_valuetype t;
  napi_typeof(env, argv[1], &t);
  if (t != napi_function) {
    napi_throw_type_error(env, NULL, "startReader: callback must be a function");
    return NULL;
  }
  if (d->fd < 0) {
    throw_errno(env, EBADF, "startReader", "the TUN device is closed");
    return NULL;
  }
  if (d->reader_running) {
    throw_errno(env, EBUSY, "startReader", "the reader is already running");
    return NULL;
  }
  napi_value opts = NULL;
  if (argc >= 3) {
    napi_typeof(env, argv[2], &t);
    if (t == napi_object) opts = argv[2];
  }
  uint32_t batch = opt_u32(env, opts, "batch", DEFAULT_BATCH);
  uint32_t buffer_size = opt_u32(env, opts, "bufferSize", DEFAULT_BUFFER);
  uint32_t headroom = opt_u32(env, opts, "headroom", 0);
  uint32_t tailroom = opt_u32(env, opts, "tailroom", 0);
  uint32_t queue = opt_u32(env, opts, "queue", DEFAULT_QUEUE);
  if (batch < 1 || batch > MAX_BATCH || buffer_size < 64 || buffer_size > (1u << 20) || headroom > 4096 ||
      tailroom > 4096 || queue < 1 || queue > 4096) {
    napi_throw_range_error(env, NULL,
                           "startReader: batch 1..1024, bufferSize 64..1 MiB, headroom/tailroom <= 4096, queue 1..4096");
    return NULL;
  }
  size_t room = ((size_t)headroom + buffer_size + tailroom + 7) & ~(size_t)7;
  size_t staging_size = room * 4 > MIN_STAGING ? room * 4 : MIN_STAGING;

  int loop_mode = 0;
  if (opts != NULL) {
    napi_value m;
    char mode[16] = {0};
    size_t mode_len = 0;
    bool has = false;
    if (napi_has_named_property(env, opts, "mode", &has) == napi_ok && has && napi_get_named_property(env, opts, "mode", &m) == napi_ok &&
        napi_get_value_string_utf8(env, m, mode, sizeof mode, &mode_len) == napi_ok) {
      if (strcmp(mode, "loop") == 0) loop_mode = 1;
      else if (strcmp(mode, "thread") != 0) {
        napi_throw_range_error(env, NULL, "startReader: mode is 'thread' or 'loop'");
        return NULL;
      }
    }
  }

  d->staging = (uint8_t *)malloc(staging_size);
  d->offsets = (uint32_t *)malloc(sizeof(uint32_t) * batch);
  d->lengths = (uint32_t *)malloc(sizeof(uint32_t) * batch);
  if (loop_mode) {
    uv_loop_t *loop = NULL;
    d->poll = (uv_poll_t *)calloc(1, sizeof *d->poll);
    napi_value name;
    napi_create_string_utf8(env, "pilot-tun.reader", NAPI_AUTO_LENGTH, &name);
    if (d->staging == NULL || d->offsets == NULL || d->lengths == NULL || d->poll == NULL || napi_get_uv_event_loop(env, &loop) != napi_ok ||
        napi_create_reference(env, argv[1], 1, &d->loop_cb) != napi_ok || napi_async_init(env, NULL, name, &d->loop_async) != napi_ok ||
        uv_poll_init(loop, d->poll, d->fd) != 0) {
      free(d->poll);
      d->poll = NULL;
      free_reader_buffers(d);
      throw_errno(env, ENOMEM, "startReader", "cannot set up the loop reader");
      return NULL;
    }
    d->poll->data = d;
    d->staging_size = staging_size;
    d->batch = batch;
    d->buffer_size = buffer_size;
    d->headroom = headroom;
    d->tailroom = tailroom;
    d->loop_mode = 1;
    d->reader_running = 1;
    uv_poll_start(d->poll, UV_READABLE | UV_DISCONNECT, on_tun_readable);
    if (napi_add_env_cleanup_hook(env, env_cleanup, d) == napi_ok) d->cleanup_hook_added = 1;
    return NULL;
  }
  d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (d->staging == NULL || d->offsets == NULL || d->lengths == NULL || d->wake_fd < 0) {
    int e = d->wake_fd < 0 ? errno : ENOMEM;
    free_reader_buffers(d);
    throw_errno(env, e, "startReader", "cannot allocate the reader");
    return NULL;
  }
  d->staging_size = staging_size;
  d->batch = batch;
  d->buffer_size = buffer_size;
  d->headroom = headroom;
  d->tailroom = tailroom;
  d->stop = 0;

  napi_value resource_name;
  CHECK(napi_create_string_utf8(env, "pilot-tun.reader", NAPI_AUTO_LENGTH, &resource_name));
  napi_status s = napi_create_threadsafe_function(env, argv[1], NULL, resource_name, queue, 1, NULL, NULL, d,
                                                  call_js, &d->tsfn);
  if (s != napi_ok) {
    free_reader_buffers(d);
    napi_throw_error(env, NULL, "napi_create_threadsafe_function failed");
    return NULL;
  }
  int e = pthread_create(&d->thread, NULL, reader_main, d);
  if (e != 0) {
    napi_release_threadsafe_function(d->tsfn, napi_tsfn_abort);
    d->tsfn = NULL;
    free_reader_buffers(d);
    throw_errno(env, e, "pthread_create", "cannot start the reader thread");
    return NULL;
  }
  pthread_setname_np(d->thread, "pilot-tun-rd");
  d->reader_running = 1;
  if (napi_add_env_cleanup_hook(env, env_cleanup, d) == napi_ok) d->cleanup_hook_added = 1;
  return NULL;
}

/* ---------- write ---------- */

static napi_value js_write_batch(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "writeBatch(handle, buffer, offsets, lengths, count)");
    return NULL;
  }
  tun_dev *d = get_dev(env, argv[0]);
  if (d == NULL) return NULL;
  uint8_t *data;
  size_t len, noff, nlen;
  uint32_t *offs, *lens, count;
  if (get_bytes(env, argv[1], &data, &len) != 0 || get_u32s(env, argv[2], &offs, &noff) != 0 ||
      get_u32s(env, argv[3], &lens, &nlen) != 0 || napi_get_value_uint32(env, argv[4], &count) != napi_ok) {
    napi_throw_type_error(env, NULL,
                          "writeBatch: buffer must be an ArrayBuffer or typed array, offsets and lengths Uint32Arrays");
    return NULL;
  }
  if (count > noff || count > nlen) {
    napi_throw_range_error(env, NULL, "writeBatch: count exceeds offsets or lengths");
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++) {
    if ((size_t)offs[i] + lens[i] > len) {
      napi_throw_range_error(env, NULL, "writeBatch: a packet lies outside the buffer");
      return NULL;
    }
  }
  if (d->fd < 0) {
    throw_errno(env, EBADF, "writeBatch", "the TUN device is closed");
    return NULL;
  }
  uint32_t written = 0;
  for (uint32_t i = 0; i < count; i++) {
    ssize_t n;
    do {
      n = write(d->fd, data + offs[i], lens[i]);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) written++;
  }
  napi_value out;
  CHECK(napi_create_uint32(env, written, &out));
  return out;
}

/* ---------- close ---------- */

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "close(handle)");
    return NULL;
  }
  tun_dev *d = get_dev(env, argv[0]);
  if (d == NULL) return NULL;
  close_dev(d);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"startReader", NULL, js_start_reader, NULL, NULL, NULL, napi_default, NULL},
      {"writeBatch", NULL, js_write_batch, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
