// The ESP8266 core's avr/pgmspace.h (the library includes it when ESP8266 is defined):
// pgm_read_byte comes from the fake Arduino.h, flash is plain memory on the host.

#ifndef MSGFLO_FAKE_AVR_PGMSPACE_H
#define MSGFLO_FAKE_AVR_PGMSPACE_H

#include "Arduino.h"

#endif  // MSGFLO_FAKE_AVR_PGMSPACE_H
