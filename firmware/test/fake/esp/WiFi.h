// A fake of the ESP32 core's WiFi.h (and, through ESP8266WiFi.h, the ESP8266 core's) for
// compiling the WiFi examples on the host: the station calls they make, and a WiFiClient that
// is the host's POSIX-socket Client (test/host/PosixClient.h), so a linked example could talk
// to a real broker. Checks the examples against the library's API, not against the real cores.

#ifndef MSGFLO_FAKE_WIFI_H
#define MSGFLO_FAKE_WIFI_H

#include "Arduino.h"
#include "Esp.h"
#include "PosixClient.h"

enum wl_status_t {
  WL_IDLE_STATUS = 0,
  WL_NO_SSID_AVAIL = 1,
  WL_CONNECTED = 3,
  WL_CONNECT_FAILED = 4,
  WL_DISCONNECTED = 6,
};

enum WiFiMode_t { WIFI_OFF = 0, WIFI_STA = 1, WIFI_AP = 2, WIFI_AP_STA = 3 };

class WiFiClient : public PosixClient {};

class FakeWiFi {
 public:
  bool mode(WiFiMode_t mode);
  wl_status_t begin(const char* ssid, const char* passphrase);
  wl_status_t status();
  uint8_t* macAddress(uint8_t* mac);
  bool disconnect(bool wifiOff = false);
};

extern FakeWiFi WiFi;

#endif  // MSGFLO_FAKE_WIFI_H
