/* tests/test_status.c - statuses reach the user as words. */
#include <string.h>

#include "clcnn.h"
#include "tap.h"

int main(void) {
  tap_ok(!strcmp(clcnn_status_name(-5), "CL_OUT_OF_RESOURCES"), "-5 is CL_OUT_OF_RESOURCES");
  tap_ok(!strcmp(clcnn_status_name(-11), "CL_BUILD_PROGRAM_FAILURE"), "-11 is CL_BUILD_PROGRAM_FAILURE");
  tap_ok(!strcmp(clcnn_status_name(-1001), "CL_PLATFORM_NOT_FOUND_KHR"), "-1001 is CL_PLATFORM_NOT_FOUND_KHR");
  tap_ok(!strcmp(clcnn_status_name(CLCNN_ERR_SHAPE), "CLCNN_ERR_SHAPE"), "clcnn's own codes have names");
  tap_ok(!strcmp(clcnn_status_name(-1017), "CLBlastInvalidDimension"), "CLBlast's codes have names");
  tap_ok(!strcmp(clcnn_status_name(CLCNN_SUCCESS), "CLCNN_SUCCESS"), "0 is CLCNN_SUCCESS");
  tap_ok(!strcmp(clcnn_status_name(12345), "UNKNOWN") && !strcmp(clcnn_status_str(12345), "unknown status"),
         "an unknown value is UNKNOWN, not a crash");
  tap_ok(CLCNN_ERR_INVALID_ARGUMENT <= -4000 && CLCNN_ERR_RANGE > -4100,
         "clcnn's codes live in -4000..-4099, apart from OpenCL's and CLBlast's");
  /* every clcnn code has a distinct name and a text */
  int all = 1;
  const int codes[] = {
#define CODE_(name, value, text) value,
      CLCNN_STATUS_MAP(CODE_)
#undef CODE_
  };
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    all &= strncmp(clcnn_status_name(codes[i]), "CLCNN_", 6) == 0;
    all &= strcmp(clcnn_status_str(codes[i]), "unknown status") != 0;
    for (size_t j = 0; j < i; j++) all &= codes[i] != codes[j];
  }
  tap_ok(all, "every clcnn status has a distinct value, a name and a text");
  tap_ok(!strcmp(clcnn_version(), CLCNN_VERSION_STRING), "clcnn_version() is %s", clcnn_version());
  return tap_done();
}
