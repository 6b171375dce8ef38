// A fake of the Arduino core's Client (cores/arduino/Client.h): the abstract TCP connection
// WiFiClient, WiFiClientSecure and EthernetClient implement. Only the members the library
// calls; connect(IPAddress, port) is left out, the library connects by host name.

#ifndef MSGFLO_FAKE_CLIENT_H
#define MSGFLO_FAKE_CLIENT_H

#include "Arduino.h"

class Client : public Stream {
 public:
  // 1 when connected, 0 or negative on failure (the cores differ in the negative codes).
  virtual int connect(const char* host, uint16_t port) = 0;
  size_t write(uint8_t byte) override = 0;
  size_t write(const uint8_t* data, size_t length) override = 0;
  int available() override = 0;
  int read() override = 0;
  virtual int read(uint8_t* data, size_t length) = 0;
  int peek() override = 0;
  void flush() override = 0;
  virtual void stop() = 0;
  virtual uint8_t connected() = 0;
  virtual operator bool() = 0;
};

#endif  // MSGFLO_FAKE_CLIENT_H
