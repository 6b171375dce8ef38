// A scripted Client for host tests of the MQTT transport: the test plays the broker, writing
// bytes into what the client reads and reading back what it wrote; connects succeed or fail on
// demand and the connection can be cut.

#ifndef MSGFLO_FAKE_FAKE_CLIENT_H
#define MSGFLO_FAKE_FAKE_CLIENT_H

#include "Client.h"

namespace fake {

class FakeClient : public Client {
 public:
  static const size_t kCapacity = 16384;

  int connect(const char* host, uint16_t port) override {
    ++connects;
    lastHost = host;
    lastPort = port;
    if (!accept) return 0;
    up = true;
    inLength = inPos = 0;
    return 1;
  }
  size_t write(uint8_t byte) override { return write(&byte, 1); }
  size_t write(const uint8_t* data, size_t length) override {
    if (!up) return 0;
    size_t i = 0;
    for (; i < length && outLength < kCapacity; ++i) out[outLength++] = data[i];
    return i;
  }
  int available() override { return up ? static_cast<int>(inLength - inPos) : 0; }
  int read() override { return available() > 0 ? in[inPos++] : -1; }
  int read(uint8_t* data, size_t length) override {
    size_t i = 0;
    while (i < length && available() > 0) data[i++] = in[inPos++];
    return i ? static_cast<int>(i) : -1;
  }
  int peek() override { return available() > 0 ? in[inPos] : -1; }
  void flush() override {}
  void stop() override {
    ++stops;
    up = false;
  }
  uint8_t connected() override { return up ? 1 : 0; }
  operator bool() override { return up; }

  // The broker's side.
  void script(const uint8_t* data, size_t length) {
    for (size_t i = 0; i < length && inLength < kCapacity; ++i) in[inLength++] = data[i];
  }

  bool accept = true;
  bool up = false;
  int connects = 0;
  int stops = 0;
  const char* lastHost = nullptr;
  uint16_t lastPort = 0;
  uint8_t in[kCapacity] = {};
  size_t inLength = 0;
  size_t inPos = 0;
  uint8_t out[kCapacity] = {};
  size_t outLength = 0;
};

}  // namespace fake

#endif  // MSGFLO_FAKE_FAKE_CLIENT_H
