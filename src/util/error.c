#include <uv.h>

#include "wsio.h"

const char *wsio_version(void) { return WSIO_VERSION_STRING; }

const char *wsio_strerror(int err) {
  switch (err) {
    case 0: return "success";
#define WSIO_ERR_CASE_(name, code, msg) case code: return msg;
    WSIO_ERRNO_MAP(WSIO_ERR_CASE_)
#undef WSIO_ERR_CASE_
    default: break;
  }
  /* libuv's codes are negated errno values, far below ours. */
  if (err < -100) return uv_strerror(err);
  return "unknown error";
}
