// Provisioning over USB: the board's side of Improv Wi-Fi's serial protocol, plus msgflo's
// broker command (0xF0), as docs/provisioning.md specifies. A WiFi board that has no
// credentials yet answers the gateway's serial bridge (or ESP Web Tools in a browser) on its
// USB serial port; it is given the WiFi name and passphrase, the broker's address and port, an
// MQTT user and password and its role, and keeps them in a CredentialStore the sketch supplies
// (EEPROM or Preferences on an ESP, a file on the host).
//
//   msgflo::Provisioning provisioning(Serial, store, info);
//   provisioning.begin();                   // loads what the store holds
//   loop: provisioning.loop();              // reads Serial, answers, never waits
//         if (provisioning.state() == msgflo::ProvisionState::Joining) {
//           WiFi.begin(c.ssid, c.passphrase) ... then provisioning.joined() or .joinFailed()
//         }
//
// Fixed buffers (one 255-byte packet), no heap; C++11 without the standard library.

#ifndef MSGFLO_PROVISION_H
#define MSGFLO_PROVISION_H

#include <Arduino.h>
#include <stddef.h>

namespace msgflo {

namespace improv {

const uint8_t kVersion = 1;
const size_t kMaxData = 255;  // the packet's length byte

enum class PacketType : uint8_t {
  CurrentState = 0x01,
  ErrorState = 0x02,
  Rpc = 0x03,
  Result = 0x04
};
enum class State : uint8_t { Ready = 0x02, Provisioning = 0x03, Provisioned = 0x04 };
enum class Error : uint8_t {
  None = 0x00,
  InvalidRpc = 0x01,
  UnknownRpc = 0x02,
  UnableToConnect = 0x03,
  Unknown = 0xFF
};
enum class Command : uint8_t {
  WifiSettings = 0x01,
  RequestState = 0x02,
  DeviceInfo = 0x03,
  Broker = 0xF0  // msgflo's extension
};

// The sum of the bytes modulo 256.
uint8_t checksum(const uint8_t* data, size_t length, uint8_t sum = 0);

// Finds packets in a byte stream; bytes outside packets (log output) are skipped.
class PacketDecoder {
 public:
  enum class Event : uint8_t { None, Packet, BadChecksum, BadVersion };

  Event push(uint8_t byte);
  uint8_t type() const { return type_; }
  const uint8_t* data() const { return data_; }
  size_t length() const { return length_; }

 private:
  enum class Phase : uint8_t { Header, Version, Type, Length, Data, Checksum };
  Event restart(Event event);

  Phase phase_ = Phase::Header;
  uint8_t matched_ = 0;
  uint8_t sum_ = 0;
  uint8_t type_ = 0;
  size_t length_ = 0;
  size_t received_ = 0;
  uint8_t data_[kMaxData] = {};
};

// Improv's string list: a length byte, then the bytes. Reads string `index` of `data` into
// `out` (capacity bytes, NUL included); false if it is absent or does not fit.
bool readString(const uint8_t* data, size_t length, size_t index, char* out, size_t capacity);
size_t countStrings(const uint8_t* data, size_t length);  // 0 if they do not fit `length`

// Writes one packet (and the line feed that follows it) without a buffer of its own.
void writePacket(Print& out, PacketType type, const uint8_t* data, size_t length);
// An RPC result of `count` strings.
void writeResult(Print& out, Command command, const char* const* strings, size_t count);

}  // namespace improv

// What a board keeps: saved and loaded as is (a fixed size, no pointers). Strings are
// NUL-terminated; the sizes are the limits the board accepts.
struct Credentials {
  uint32_t magic;    // kCredentialsMagic when valid
  uint16_t version;  // of this layout
  uint16_t port;     // the broker's TCP port
  char ssid[33];
  char passphrase[65];
  char host[65];  // the broker's address or name
  char user[65];
  char password[65];
  char role[65];
  uint16_t check;  // CRC-16 of everything before it
};
// No padding anywhere, so the check covers defined bytes only and the stored bytes are the
// same on every board of one architecture's endianness.
static_assert(sizeof(Credentials) == 368, "Credentials must have no padding");

const uint32_t kCredentialsMagic = 0x4D534750UL;  // "MSGP"
const uint16_t kCredentialsVersion = 1;

// Marks `credentials` valid (magic, version, check) before it is saved.
void sealCredentials(Credentials& credentials);
// Whether loaded bytes are a valid, sealed Credentials (erased EEPROM is 0xFF: not valid).
bool credentialsValid(const Credentials& credentials);

// Where a sketch keeps the credentials: EEPROM, Preferences, a file on the host.
class CredentialStore {
 public:
  virtual bool load(Credentials& credentials) = 0;  // false: nothing stored
  virtual bool save(const Credentials& credentials) = 0;

 protected:
  ~CredentialStore() {}
};

// What Improv's device-information command answers.
struct DeviceInfo {
  const char* firmware;  // e.g. "msgflo-arduino"
  const char* version;
  const char* chip;  // e.g. "esp8266", "esp32"
  const char* name;  // a name for a person
};

enum class ProvisionState : uint8_t {
  Unprovisioned,  // no valid credentials: waiting for them
  Joining,        // credentials received: the sketch joins the WiFi and says how it went
  Provisioned     // valid credentials stored
};

class Provisioning {
 public:
  Provisioning(Stream& stream, CredentialStore& store, const DeviceInfo& info)
      : stream_(stream), store_(store), info_(info) {}

  void begin();  // loads the stored credentials
  void loop();   // reads what is available, answers, never waits

  ProvisionState state() const { return state_; }
  bool provisioned() const { return state_ == ProvisionState::Provisioned; }
  // The stored credentials when provisioned; the ones to try while joining.
  const Credentials& credentials() const {
    return state_ == ProvisionState::Joining ? pending_ : stored_;
  }

  // The sketch joined the WiFi with credentials(): they are saved, the client is told.
  void joined();
  // The sketch could not join: the client is told; the old credentials (if any) stay.
  void joinFailed();

 private:
  void handle(const uint8_t* data, size_t length);
  void handleBroker(const uint8_t* data, size_t length);
  void handleWifi(const uint8_t* data, size_t length);
  void sendState();
  void sendError(improv::Error error);
  void sendBrokerResult(const char* role);
  void sendProvisionedResult();
  improv::State improvState() const;

  Stream& stream_;
  CredentialStore& store_;
  const DeviceInfo& info_;
  improv::PacketDecoder decoder_;
  ProvisionState state_ = ProvisionState::Unprovisioned;
  Credentials stored_ = {};   // what the store holds (valid when provisioned)
  Credentials pending_ = {};  // what is being given: broker settings first, then the WiFi
};

}  // namespace msgflo

#endif  // MSGFLO_PROVISION_H
