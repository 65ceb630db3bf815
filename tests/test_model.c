#include "tap.h"
int main(void) { tap_ok(0, "not written yet"); return tap_done(); }
