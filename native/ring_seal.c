/*
 * AES-256-GCM for sealed ring datagrams (src/security/gcm.ts), through the OpenSSL that Node
 * itself is built with and exports (no library of our own to link): node:crypto makes a new
 * cipher object and key schedule for every datagram and returns a new buffer to copy, while
 * here one pair of contexts per key is only re-armed with the next nonce, and the bytes go
 * straight into the caller's buffer.
 *
 *   createKey(key) → handle                  key: 32 bytes; the contexts are freed with the handle
 *   seal(handle, out, nonceAt, aadBytes, extraAad, plain) → undefined
 *     AAD = out[0..aadBytes) ‖ extraAad (a Uint8Array or null); nonce = out[nonceAt..nonceAt+12);
 *     ciphertext of plain → out[aadBytes..aadBytes+plain.length), tag → the 16 bytes after it,
 *     which must end `out`.
 *   open(handle, datagram, nonceAt, aadBytes, extraAad) → true when authentic
 *     The same layout; the body datagram[aadBytes..length-16) is decrypted in place (garbage
 *     when the answer is false: the caller drops the datagram).
 *
 * Misuse (wrong types, a layout that does not fit) throws a TypeError; OpenSSL failing to
 * initialise throws an Error.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <node_api.h>
#include <openssl/evp.h>

#define KEY_BYTES 32
#define NONCE_BYTES 12
#define TAG_BYTES 16

typedef struct {
  EVP_CIPHER_CTX *seal;
  EVP_CIPHER_CTX *open;
} gcm_key;

static napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

static bool bytes_of(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  napi_typedarray_type type;
  void *pointer;
  if (napi_get_typedarray_info(env, value, &type, length, &pointer, NULL, NULL) != napi_ok || type != napi_uint8_array) return false;
  *data = pointer;
  return true;
}

/* A Uint8Array, or null/undefined (length 0). */
static bool optional_bytes_of(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) return false;
  if (type == napi_null || type == napi_undefined) {
    *data = NULL;
    *length = 0;
    return true;
  }
  return bytes_of(env, value, data, length);
}

static void free_key(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  gcm_key *key = data;
  EVP_CIPHER_CTX_free(key->seal);
  EVP_CIPHER_CTX_free(key->open);
  free(key);
}

static napi_value create_key(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t *raw;
  size_t length;
  if (argc != 1 || !bytes_of(env, argv[0], &raw, &length) || length != KEY_BYTES) return fail(env, "createKey(key): a 32-byte Uint8Array");
  gcm_key *key = calloc(1, sizeof *key);
  if (key == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  key->seal = EVP_CIPHER_CTX_new();
  key->open = EVP_CIPHER_CTX_new();
  /* The key schedule is made here, once; each datagram only sets its nonce (12 bytes: GCM's default IV length). */
  if (key->seal == NULL || key->open == NULL || EVP_EncryptInit_ex(key->seal, EVP_aes_256_gcm(), NULL, raw, NULL) != 1 ||
      EVP_DecryptInit_ex(key->open, EVP_aes_256_gcm(), NULL, raw, NULL) != 1) {
    free_key(env, key, NULL);
    napi_throw_error(env, NULL, "OpenSSL could not set up AES-256-GCM");
    return NULL;
  }
  napi_value handle;
  if (napi_create_external(env, key, free_key, NULL, &handle) != napi_ok) {
    free_key(env, key, NULL);
    napi_throw_error(env, NULL, "could not wrap the key");
    return NULL;
  }
  return handle;
}

typedef struct {
  gcm_key *key;
  uint8_t *datagram;
  size_t datagram_length;
  int32_t nonce_at;
  int32_t aad_bytes;
  uint8_t *extra;
  size_t extra_length;
} layout;

/* The arguments seal and open share: handle, datagram, nonceAt, aadBytes, extraAad. */
static bool read_layout(napi_env env, napi_value *argv, layout *out) {
  napi_valuetype type;
  void *key;
  if (napi_typeof(env, argv[0], &type) != napi_ok || type != napi_external || napi_get_value_external(env, argv[0], &key) != napi_ok) return false;
  out->key = key;
  if (!bytes_of(env, argv[1], &out->datagram, &out->datagram_length)) return false;
  if (napi_get_value_int32(env, argv[2], &out->nonce_at) != napi_ok || napi_get_value_int32(env, argv[3], &out->aad_bytes) != napi_ok) return false;
  if (!optional_bytes_of(env, argv[4], &out->extra, &out->extra_length)) return false;
  return out->nonce_at >= 0 && out->aad_bytes >= 0 && (size_t)out->nonce_at + NONCE_BYTES <= out->datagram_length &&
         (size_t)out->aad_bytes + TAG_BYTES <= out->datagram_length && out->datagram_length <= INT32_MAX && out->extra_length <= INT32_MAX;
}

/* Arms `context` with the datagram's nonce and feeds it the associated data. */
static bool start(EVP_CIPHER_CTX *context, const layout *at, int (*init)(EVP_CIPHER_CTX *, const EVP_CIPHER *, ENGINE *, const unsigned char *, const unsigned char *),
                  int (*update)(EVP_CIPHER_CTX *, unsigned char *, int *, const unsigned char *, int)) {
  int written;
  if (init(context, NULL, NULL, NULL, at->datagram + at->nonce_at) != 1) return false;
  if (at->aad_bytes > 0 && update(context, NULL, &written, at->datagram, at->aad_bytes) != 1) return false;
  if (at->extra_length > 0 && update(context, NULL, &written, at->extra, (int)at->extra_length) != 1) return false;
  return true;
}

static napi_value seal_datagram(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  layout at;
  uint8_t *plain;
  size_t plain_length;
  if (argc != 6 || !read_layout(env, argv, &at) || !bytes_of(env, argv[5], &plain, &plain_length) ||
      (size_t)at.aad_bytes + plain_length + TAG_BYTES != at.datagram_length)
    return fail(env, "seal(handle, out, nonceAt, aadBytes, extraAad, plain): out is aadBytes + plain + 16 bytes long");
  uint8_t *body = at.datagram + at.aad_bytes;
  int written;
  if (!start(at.key->seal, &at, EVP_EncryptInit_ex, EVP_EncryptUpdate) ||
      (plain_length > 0 && EVP_EncryptUpdate(at.key->seal, body, &written, plain, (int)plain_length) != 1) ||
      EVP_EncryptFinal_ex(at.key->seal, body + plain_length, &written) != 1 ||
      EVP_CIPHER_CTX_ctrl(at.key->seal, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, body + plain_length) != 1) {
    napi_throw_error(env, NULL, "OpenSSL failed to seal");
    return NULL;
  }
  return NULL;
}

static napi_value open_datagram(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  layout at;
  if (argc != 5 || !read_layout(env, argv, &at)) return fail(env, "open(handle, datagram, nonceAt, aadBytes, extraAad): datagram at least aadBytes + 16 bytes long");
  size_t body_length = at.datagram_length - at.aad_bytes - TAG_BYTES;
  uint8_t *body = at.datagram + at.aad_bytes;
  int written;
  /* Any failure, and the tag check in Final above all, means "not authentic". */
  bool authentic = start(at.key->open, &at, EVP_DecryptInit_ex, EVP_DecryptUpdate) &&
                   (body_length == 0 || EVP_DecryptUpdate(at.key->open, body, &written, body, (int)body_length) == 1) &&
                   EVP_CIPHER_CTX_ctrl(at.key->open, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, body + body_length) == 1 &&
                   EVP_DecryptFinal_ex(at.key->open, body + body_length, &written) > 0;
  napi_value result;
  napi_get_boolean(env, authentic, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"createKey", NULL, create_key, NULL, NULL, NULL, napi_default, NULL},
      {"seal", NULL, seal_datagram, NULL, NULL, NULL, napi_default, NULL},
      {"open", NULL, open_datagram, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
