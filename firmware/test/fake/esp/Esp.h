// A fake of the ESP8266 and ESP32 cores' Esp.h for compiling the WiFi examples on the host:
// only what they call (the chip id, deep sleep). It checks the examples against the library's
// API, not against the real ESP cores, which Debian does not package.

#ifndef MSGFLO_FAKE_ESP_H
#define MSGFLO_FAKE_ESP_H

#include "Arduino.h"

class EspClass {
 public:
  uint32_t getChipId();                   // ESP8266
  uint64_t getEfuseMac();                 // ESP32: the factory MAC
  void deepSleep(uint64_t microseconds);  // ESP8266; here: exits the program
};

extern EspClass ESP;

// ESP32 (esp_sleep.h, which its Arduino.h includes).
void esp_sleep_enable_timer_wakeup(uint64_t microseconds);
void esp_deep_sleep_start();

#endif  // MSGFLO_FAKE_ESP_H
