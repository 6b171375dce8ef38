// See PosixClient.h.

#include "PosixClient.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {
const int kConnectTimeoutMs = 2000;
const int kWriteTimeoutMs = 1000;
}  // namespace

int PosixClient::connect(const char* host, uint16_t port) {
  stop();
  char service[8];
  snprintf(service, sizeof service, "%u", static_cast<unsigned>(port));
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host, service, &hints, &found) != 0) return 0;
  int fd = socket(found->ai_family, found->ai_socktype | SOCK_NONBLOCK, found->ai_protocol);
  int ok = fd >= 0 ? ::connect(fd, found->ai_addr, found->ai_addrlen) : -1;
  freeaddrinfo(found);
  if (fd < 0) return 0;
  if (ok != 0 && errno == EINPROGRESS) {
    pollfd p = {fd, POLLOUT, 0};
    int error = 0;
    socklen_t size = sizeof error;
    if (poll(&p, 1, kConnectTimeoutMs) == 1 &&
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) == 0 && error == 0) {
      ok = 0;
    }
  }
  if (ok != 0) {
    close(fd);
    return 0;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fd_ = fd;
  closed_ = false;
  return 1;
}

size_t PosixClient::write(const uint8_t* data, size_t length) {
  size_t done = 0;
  while (fd_ >= 0 && done < length) {
    const ssize_t n = send(fd_, data + done, length - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p = {fd_, POLLOUT, 0};
      if (poll(&p, 1, kWriteTimeoutMs) != 1) break;
    } else {
      closed_ = true;
      break;
    }
  }
  return done;
}

int PosixClient::available() {
  if (fd_ < 0) return 0;
  int count = 0;
  if (ioctl(fd_, FIONREAD, &count) != 0) return 0;
  if (count == 0) {  // nothing to read: has the peer closed?
    uint8_t byte;
    const ssize_t n = recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) closed_ = true;
  }
  return count;
}

int PosixClient::read(uint8_t* data, size_t length) {
  if (fd_ < 0) return -1;
  const ssize_t n = recv(fd_, data, length, MSG_DONTWAIT);
  if (n == 0) closed_ = true;
  return n > 0 ? static_cast<int>(n) : -1;
}

int PosixClient::read() {
  uint8_t byte;
  return read(&byte, 1) == 1 ? byte : -1;
}

int PosixClient::peek() {
  uint8_t byte;
  if (fd_ < 0 || recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT) != 1) return -1;
  return byte;
}

void PosixClient::stop() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  closed_ = false;
}

void PosixClient::waitReadable(int timeoutMs) {
  if (fd_ < 0) {
    poll(nullptr, 0, timeoutMs);
    return;
  }
  pollfd p = {fd_, POLLIN, 0};
  poll(&p, 1, timeoutMs);
}
