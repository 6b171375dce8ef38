// An Arduino Client over a POSIX TCP socket, so the library runs on the host against a real
// broker: connect with a timeout, then non-blocking reads; a peer that closed reads as
// disconnected, as WiFiClient does.

#ifndef MSGFLO_HOST_POSIX_CLIENT_H
#define MSGFLO_HOST_POSIX_CLIENT_H

#include "Client.h"

class PosixClient : public Client {
 public:
  ~PosixClient() override { stop(); }
  int connect(const char* host, uint16_t port) override;
  size_t write(uint8_t byte) override { return write(&byte, 1); }
  size_t write(const uint8_t* data, size_t length) override;
  int available() override;
  int read() override;
  int read(uint8_t* data, size_t length) override;
  int peek() override;
  void flush() override {}
  void stop() override;
  uint8_t connected() override { return fd_ >= 0 && !closed_ ? 1 : 0; }
  operator bool() override { return connected() != 0; }
  // Not Arduino: blocks up to timeoutMs until there is something to read (or the peer closed),
  // so a host loop() runs when the broker's bytes arrive instead of polling on a timer.
  void waitReadable(int timeoutMs);

 private:
  int fd_ = -1;
  bool closed_ = false;
};

#endif  // MSGFLO_HOST_POSIX_CLIENT_H
