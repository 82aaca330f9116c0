/*
 * Batched UDP sends for the ring link (src/daemon/udp-native.ts), on the file descriptor of
 * a socket that Node's dgram module owns and polls:
 *
 *   sendSegments(fd, buffers, segmentBytes, address, port) → bytes sent, or -errno
 *     One sendmsg of the buffers (an iovec) with UDP_SEGMENT = segmentBytes: the kernel
 *     (or the network card) cuts the payload into datagrams of segmentBytes, the last one
 *     shorter. Every buffer but the last must be segmentBytes long.
 *   enableGro(fd) → 0, or -errno
 *     UDP_GRO: the kernel may hand several same-size datagrams of one flow to one read.
 *   nextDatagramBytes(fd) → length of the datagram waiting to be read (0: none), or -errno
 *     FIONREAD: whether a read would find anything, without reading it.
 *
 * Linux only (UDP_SEGMENT since 4.18, UDP_GRO since 5.0); elsewhere both return -ENOSYS.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <node_api.h>

#ifdef __linux__
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#endif

/* Longest batch: the kernel refuses more segments than this (UDP_MAX_SEGMENTS on older kernels). */
#define SEGMENTS_MAX 64

static napi_value number(napi_env env, double value) {
  napi_value result;
  napi_create_double(env, value, &result);
  return result;
}

static napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

static napi_value send_segments(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 5) return fail(env, "sendSegments(fd, buffers, segmentBytes, address, port)");
  int32_t fd, segment_bytes, port;
  uint32_t count;
  bool is_array;
  char address[64];
  size_t address_length;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok) return fail(env, "fd: a number");
  if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array) return fail(env, "buffers: an array");
  napi_get_array_length(env, argv[1], &count);
  if (napi_get_value_int32(env, argv[2], &segment_bytes) != napi_ok || segment_bytes <= 0 || segment_bytes > 0xffff)
    return fail(env, "segmentBytes: 1..65535");
  if (napi_get_value_string_utf8(env, argv[3], address, sizeof address, &address_length) != napi_ok)
    return fail(env, "address: a string");
  if (napi_get_value_int32(env, argv[4], &port) != napi_ok || port <= 0 || port > 0xffff) return fail(env, "port: 1..65535");
  if (count == 0 || count > SEGMENTS_MAX) return fail(env, "buffers: 1..64 of them");
#ifdef __linux__
  struct iovec iov[SEGMENTS_MAX];
  for (uint32_t i = 0; i < count; i++) {
    napi_value element;
    napi_typedarray_type type;
    size_t length;
    void *data;
    napi_get_element(env, argv[1], i, &element);
    if (napi_get_typedarray_info(env, element, &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array)
      return fail(env, "buffers: Uint8Arrays");
    if (i + 1 < count && length != (size_t)segment_bytes) return fail(env, "buffers: all but the last segmentBytes long");
    iov[i].iov_base = data;
    iov[i].iov_len = length;
  }
  struct sockaddr_storage to;
  socklen_t to_length;
  memset(&to, 0, sizeof to);
  struct sockaddr_in *v4 = (struct sockaddr_in *)&to;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&to;
  if (inet_pton(AF_INET, address, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    to_length = sizeof *v4;
  } else if (inet_pton(AF_INET6, address, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    to_length = sizeof *v6;
  } else {
    return fail(env, "address: an IP literal");
  }
  union {
    char bytes[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr message;
  memset(&message, 0, sizeof message);
  message.msg_name = &to;
  message.msg_namelen = to_length;
  message.msg_iov = iov;
  message.msg_iovlen = count;
  message.msg_control = control.bytes;
  message.msg_controllen = sizeof control.bytes;
  struct cmsghdr *header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_UDP;
  header->cmsg_type = UDP_SEGMENT;
  header->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t segment = (uint16_t)segment_bytes;
  memcpy(CMSG_DATA(header), &segment, sizeof segment);
  ssize_t sent;
  do {
    sent = sendmsg(fd, &message, MSG_DONTWAIT);
  } while (sent < 0 && errno == EINTR);
  return number(env, sent < 0 ? -errno : (double)sent);
#else
  (void)fd;
  return number(env, -ENOSYS);
#endif
}

/* The one argument of the descriptor-only functions; false once a TypeError is thrown. */
static bool fd_argument(napi_env env, napi_callback_info info, const char *usage, int32_t *fd) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc == 1 && napi_get_value_int32(env, argv[0], fd) == napi_ok) return true;
  fail(env, usage);
  return false;
}

static napi_value enable_gro(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_argument(env, info, "enableGro(fd)", &fd)) return NULL;
#ifdef __linux__
  int on = 1;
  return number(env, setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) < 0 ? -errno : 0);
#else
  return number(env, -ENOSYS);
#endif
}

static napi_value next_datagram_bytes(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_argument(env, info, "nextDatagramBytes(fd)", &fd)) return NULL;
#ifdef __linux__
  int bytes = 0;
  return number(env, ioctl(fd, FIONREAD, &bytes) < 0 ? -errno : bytes);
#else
  return number(env, -ENOSYS);
#endif
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"sendSegments", NULL, send_segments, NULL, NULL, NULL, napi_default, NULL},
      {"enableGro", NULL, enable_gro, NULL, NULL, NULL, napi_default, NULL},
      {"nextDatagramBytes", NULL, next_datagram_bytes, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  napi_value segments_max;
  napi_create_int32(env, SEGMENTS_MAX, &segments_max);
  napi_set_named_property(env, exports, "segmentsMax", segments_max);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
