// The test-controlled clock behind the fake millis().

#include "Arduino.h"

namespace {
unsigned long now_ = 0;
}

unsigned long millis() {
  return now_;
}

namespace fake {
void setMillis(unsigned long now) {
  now_ = now;
}
void advanceMillis(unsigned long delta) {
  now_ += delta;
}
}  // namespace fake
