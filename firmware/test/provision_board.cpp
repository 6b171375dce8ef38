// A "board" on the host for provisioning tests: the library's Provisioning on the master side
// of a pty (the gateway's serial bridge opens the slave, as it opens a USB board), with a
// CredentialStore in a file, as a sketch keeps one in EEPROM or Preferences.
//
//   provision_board --fd N --store FILE [--fail-join]   serve the pty whose master is fd N
//   provision_board --show FILE                         print what FILE holds, key=value
//
// The host has no WiFi to join: the board reports the join as done (or, with --fail-join, as
// failed) as soon as it has the credentials. It prints one line per event on stdout and runs
// until it is terminated.

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "Arduino.h"
#include "MsgfloProvision.h"

namespace {

// A Stream over a non-blocking file descriptor.
class FdStream : public Stream {
 public:
  explicit FdStream(int fd) : fd_(fd) {}
  int available() override {
    fill();
    return static_cast<int>(length_ - pos_);
  }
  int read() override { return available() > 0 ? buffer_[pos_++] : -1; }
  int peek() override { return available() > 0 ? buffer_[pos_] : -1; }
  size_t write(uint8_t byte) override { return write(&byte, 1); }
  size_t write(const uint8_t* data, size_t length) override {
    size_t done = 0;
    while (done < length) {
      const ssize_t n = ::write(fd_, data + done, length - done);
      if (n > 0) {
        done += static_cast<size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        return done;
      } else {
        pollfd out = {fd_, POLLOUT, 0};
        poll(&out, 1, 100);
      }
    }
    return done;
  }

 private:
  void fill() {
    if (pos_ < length_) return;
    pos_ = length_ = 0;
    const ssize_t n = ::read(fd_, buffer_, sizeof buffer_);
    if (n > 0) length_ = static_cast<size_t>(n);
  }

  int fd_;
  uint8_t buffer_[512];
  size_t pos_ = 0;
  size_t length_ = 0;
};

// The credentials in a file: written to a temporary file and renamed, so a crash leaves the
// old one or the new one.
class FileStore : public msgflo::CredentialStore {
 public:
  explicit FileStore(const char* path) : path_(path) {}
  bool load(msgflo::Credentials& credentials) override {
    FILE* file = fopen(path_, "rb");
    if (!file) return false;
    const size_t n = fread(&credentials, 1, sizeof credentials, file);
    fclose(file);
    return n == sizeof credentials;
  }
  bool save(const msgflo::Credentials& credentials) override {
    char temporary[4096];
    snprintf(temporary, sizeof temporary, "%s.tmp", path_);
    FILE* file = fopen(temporary, "wb");
    if (!file) return false;
    const bool written = fwrite(&credentials, 1, sizeof credentials, file) == sizeof credentials;
    if (fclose(file) != 0 || !written) return false;
    return rename(temporary, path_) == 0;
  }

 private:
  const char* path_;
};

int show(const char* path) {
  FileStore store(path);
  msgflo::Credentials c = {};
  const bool valid = store.load(c) && msgflo::credentialsValid(c);
  printf("valid=%d\n", valid ? 1 : 0);
  if (valid) {
    printf("ssid=%s\npassphrase=%s\nhost=%s\nport=%u\nuser=%s\npassword=%s\nrole=%s\n", c.ssid,
           c.passphrase, c.host, static_cast<unsigned>(c.port), c.user, c.password, c.role);
  }
  return valid ? 0 : 1;
}

int serve(int fd, const char* storePath, bool failJoin) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  FdStream stream(fd);
  FileStore store(storePath);
  const msgflo::DeviceInfo info = {"msgflo-provision-board", "1.0.0", "host", "Host board"};
  msgflo::Provisioning provisioning(stream, store, info);
  provisioning.begin();
  printf("started %s\n", provisioning.provisioned() ? "provisioned" : "unprovisioned");
  fflush(stdout);
  for (;;) {
    pollfd in = {fd, POLLIN, 0};
    poll(&in, 1, 50);
    provisioning.loop();
    if (provisioning.state() == msgflo::ProvisionState::Joining) {
      const msgflo::Credentials& c = provisioning.credentials();
      printf("joining %s\n", c.ssid);
      if (failJoin) {
        provisioning.joinFailed();
        printf("join failed\n");
      } else {
        provisioning.joined();
        printf("provisioned role=%s host=%s port=%u user=%s\n", provisioning.credentials().role,
               provisioning.credentials().host,
               static_cast<unsigned>(provisioning.credentials().port),
               provisioning.credentials().user);
      }
      fflush(stdout);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  int fd = -1;
  const char* storePath = nullptr;
  bool failJoin = false;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--show") == 0 && i + 1 < argc) return show(argv[i + 1]);
    if (strcmp(argv[i], "--fd") == 0 && i + 1 < argc) {
      fd = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc) {
      storePath = argv[++i];
    } else if (strcmp(argv[i], "--fail-join") == 0) {
      failJoin = true;
    } else {
      fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (fd < 0 || !storePath) {
    fprintf(stderr, "usage: provision_board --fd N --store FILE [--fail-join] | --show FILE\n");
    return 2;
  }
  return serve(fd, storePath, failJoin);
}
