// The fake ESP cores' objects and a main() that runs a sketch: setup(), then loop() until the
// sketch sleeps (ESP.deepSleep / esp_deep_sleep_start exit) or for --loops N iterations (100
// by default). The host tests only build the examples with this; the station is always joined.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "WiFi.h"

FakeWiFi WiFi;
EspClass ESP;

bool FakeWiFi::mode(WiFiMode_t) {
  return true;
}

wl_status_t FakeWiFi::begin(const char*, const char*) {
  return WL_CONNECTED;
}

wl_status_t FakeWiFi::status() {
  return WL_CONNECTED;
}

uint8_t* FakeWiFi::macAddress(uint8_t* mac) {
  const uint8_t fixed[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};  // locally administered
  memcpy(mac, fixed, sizeof fixed);
  return mac;
}

bool FakeWiFi::disconnect(bool) {
  return true;
}

uint32_t EspClass::getChipId() {
  return 0x00a1b2c3;
}

uint64_t EspClass::getEfuseMac() {
  return 0x010000000002ULL;
}

void EspClass::deepSleep(uint64_t microseconds) {
  printf("deep sleep %llu us\n", static_cast<unsigned long long>(microseconds));
  exit(0);
}

namespace {
uint64_t wakeAfter = 0;
}

void esp_sleep_enable_timer_wakeup(uint64_t microseconds) {
  wakeAfter = microseconds;
}

void esp_deep_sleep_start() {
  ESP.deepSleep(wakeAfter);
}

void setup();
void loop();

int main(int argc, char** argv) {
  const long loops = argc > 2 && strcmp(argv[1], "--loops") == 0 ? atol(argv[2]) : 100;
  setup();
  for (long i = 0; i < loops; ++i) loop();
  return 0;
}
