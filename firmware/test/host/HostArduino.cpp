// The Arduino core's clock for host programs: millis() from the monotonic clock.

#include <time.h>

#include "Arduino.h"

unsigned long millis() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<unsigned long>(now.tv_sec) * 1000UL +
         static_cast<unsigned long>(now.tv_nsec / 1000000);
}
