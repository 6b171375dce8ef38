// A fake of the ESP8266 core's ESP8266WiFi.h: the same fake station as the ESP32's WiFi.h.

#ifndef MSGFLO_FAKE_ESP8266WIFI_H
#define MSGFLO_FAKE_ESP8266WIFI_H

#include "WiFi.h"

#endif  // MSGFLO_FAKE_ESP8266WIFI_H
