// Provisioning over USB; see MsgfloProvision.h and docs/provisioning.md.

#include "MsgfloProvision.h"

#include "MsgfloLink.h"

namespace msgflo {

namespace improv {

namespace {
const uint8_t kHeader[] = {'I', 'M', 'P', 'R', 'O', 'V'};
const size_t kHeaderLength = sizeof kHeader;
}  // namespace

uint8_t checksum(const uint8_t* data, size_t length, uint8_t sum) {
  for (size_t i = 0; i < length; ++i) sum = static_cast<uint8_t>(sum + data[i]);
  return sum;
}

PacketDecoder::Event PacketDecoder::restart(Event event) {
  phase_ = Phase::Header;
  matched_ = 0;
  return event;
}

PacketDecoder::Event PacketDecoder::push(uint8_t byte) {
  switch (phase_) {
    case Phase::Header:
      if (byte == kHeader[matched_]) {
        ++matched_;
      } else {
        // 'I' occurs only at the header's start: a mismatch starts again there or at nothing.
        matched_ = byte == kHeader[0] ? 1 : 0;
      }
      if (matched_ == kHeaderLength) {
        sum_ = checksum(kHeader, kHeaderLength);
        phase_ = Phase::Version;
      }
      return Event::None;
    case Phase::Version:
      if (byte != kVersion) return restart(Event::BadVersion);
      phase_ = Phase::Type;
      break;
    case Phase::Type:
      type_ = byte;
      phase_ = Phase::Length;
      break;
    case Phase::Length:
      length_ = byte;
      received_ = 0;
      phase_ = length_ ? Phase::Data : Phase::Checksum;
      break;
    case Phase::Data:
      data_[received_++] = byte;
      if (received_ == length_) phase_ = Phase::Checksum;
      break;
    case Phase::Checksum:
      return restart(byte == sum_ ? Event::Packet : Event::BadChecksum);
  }
  sum_ = static_cast<uint8_t>(sum_ + byte);
  return Event::None;
}

size_t countStrings(const uint8_t* data, size_t length) {
  size_t count = 0;
  size_t pos = 0;
  while (pos < length) {
    pos += 1 + static_cast<size_t>(data[pos]);
    if (pos > length) return 0;
    ++count;
  }
  return count;
}

bool readString(const uint8_t* data, size_t length, size_t index, char* out, size_t capacity) {
  size_t pos = 0;
  for (size_t i = 0; pos < length; ++i) {
    const size_t size = data[pos];
    if (pos + 1 + size > length) return false;
    if (i == index) {
      if (size + 1 > capacity) return false;
      for (size_t k = 0; k < size; ++k) {
        const uint8_t c = data[pos + 1 + k];
        if (c == 0) return false;  // a NUL would cut the stored text short
        out[k] = static_cast<char>(c);
      }
      out[size] = '\0';
      return true;
    }
    pos += 1 + size;
  }
  return false;
}

namespace {
// Writes bytes and keeps their sum.
struct SummingWriter {
  Print& out;
  uint8_t sum;
  void put(uint8_t byte) {
    out.write(byte);
    sum = static_cast<uint8_t>(sum + byte);
  }
};

void writeHead(SummingWriter& writer, PacketType type, size_t length) {
  for (size_t i = 0; i < kHeaderLength; ++i) writer.put(kHeader[i]);
  writer.put(kVersion);
  writer.put(static_cast<uint8_t>(type));
  writer.put(static_cast<uint8_t>(length));
}

void writeEnd(SummingWriter& writer) {
  writer.out.write(writer.sum);
  writer.out.write(static_cast<uint8_t>('\n'));
}

size_t textLength(const char* text) {
  size_t length = 0;
  while (text && text[length]) ++length;
  return length;
}
}  // namespace

void writePacket(Print& out, PacketType type, const uint8_t* data, size_t length) {
  if (length > kMaxData) return;
  SummingWriter writer = {out, 0};
  writeHead(writer, type, length);
  for (size_t i = 0; i < length; ++i) writer.put(data[i]);
  writeEnd(writer);
}

void writeResult(Print& out, Command command, const char* const* strings, size_t count) {
  size_t total = 0;
  for (size_t i = 0; i < count; ++i) {
    const size_t length = textLength(strings[i]);
    if (length > 255) return;
    total += 1 + length;
  }
  if (total + 2 > kMaxData) return;
  SummingWriter writer = {out, 0};
  writeHead(writer, PacketType::Result, total + 2);
  writer.put(static_cast<uint8_t>(command));
  writer.put(static_cast<uint8_t>(total));
  for (size_t i = 0; i < count; ++i) {
    const size_t length = textLength(strings[i]);
    writer.put(static_cast<uint8_t>(length));
    for (size_t k = 0; k < length; ++k) writer.put(static_cast<uint8_t>(strings[i][k]));
  }
  writeEnd(writer);
}

}  // namespace improv

namespace {
// The check covers every byte before it; the layout has no padding (see the header).
const size_t kCheckedLength = offsetof(Credentials, check);

uint16_t credentialsCheck(const Credentials& credentials) {
  return link::crc16(reinterpret_cast<const uint8_t*>(&credentials), kCheckedLength);
}

// A decimal TCP port, 1..65535.
bool parsePort(const char* text, uint16_t& port) {
  uint32_t value = 0;
  size_t digits = 0;
  for (; text[digits]; ++digits) {
    if (text[digits] < '0' || text[digits] > '9' || digits >= 5) return false;
    value = value * 10 + static_cast<uint32_t>(text[digits] - '0');
  }
  if (digits == 0 || value == 0 || value > 65535) return false;
  port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace

void sealCredentials(Credentials& credentials) {
  credentials.magic = kCredentialsMagic;
  credentials.version = kCredentialsVersion;
  credentials.check = credentialsCheck(credentials);
}

bool credentialsValid(const Credentials& credentials) {
  return credentials.magic == kCredentialsMagic && credentials.version == kCredentialsVersion &&
         credentials.check == credentialsCheck(credentials) && credentials.ssid[0] != '\0';
}

using improv::Command;
using improv::Error;
using improv::PacketDecoder;
using improv::PacketType;

void Provisioning::begin() {
  Credentials loaded = {};
  if (store_.load(loaded) && credentialsValid(loaded)) {
    stored_ = loaded;
    state_ = ProvisionState::Provisioned;
  } else {
    stored_ = Credentials();
    state_ = ProvisionState::Unprovisioned;
  }
  pending_ = stored_;
}

void Provisioning::loop() {
  while (stream_.available() > 0) {
    const int byte = stream_.read();
    if (byte < 0) return;
    const PacketDecoder::Event event = decoder_.push(static_cast<uint8_t>(byte));
    if (event == PacketDecoder::Event::Packet) {
      if (decoder_.type() == static_cast<uint8_t>(PacketType::Rpc)) {
        handle(decoder_.data(), decoder_.length());
      }  // the other types go from a device to a client: not for us
    } else if (event == PacketDecoder::Event::BadChecksum ||
               event == PacketDecoder::Event::BadVersion) {
      sendError(Error::InvalidRpc);
    }
  }
}

void Provisioning::handle(const uint8_t* data, size_t length) {
  if (length < 2 || data[1] != length - 2) {
    sendError(Error::InvalidRpc);
    return;
  }
  sendError(Error::None);  // Improv: "the command arrived"
  const uint8_t* body = data + 2;
  const size_t bodyLength = length - 2;
  switch (static_cast<Command>(data[0])) {
    case Command::RequestState:
      sendState();
      if (state_ == ProvisionState::Provisioned) sendProvisionedResult();
      return;
    case Command::DeviceInfo: {
      const char* const strings[] = {info_.firmware, info_.version, info_.chip, info_.name};
      improv::writeResult(stream_, Command::DeviceInfo, strings, 4);
      return;
    }
    case Command::Broker:
      handleBroker(body, bodyLength);
      return;
    case Command::WifiSettings:
      handleWifi(body, bodyLength);
      return;
    default:
      sendError(Error::UnknownRpc);
      return;
  }
}

void Provisioning::handleBroker(const uint8_t* data, size_t length) {
  if (length == 0) {  // the query: which role does the board have?
    sendBrokerResult(state_ == ProvisionState::Provisioned ? stored_.role : "");
    return;
  }
  // "1", role, host, port, user, password (later versions append strings)
  Credentials next = pending_;
  char version[4];
  char port[8];
  const bool ok =
      improv::countStrings(data, length) >= 6 &&
      improv::readString(data, length, 0, version, sizeof version) && version[0] >= '1' &&
      version[0] <= '9' && improv::readString(data, length, 1, next.role, sizeof next.role) &&
      improv::readString(data, length, 2, next.host, sizeof next.host) &&
      improv::readString(data, length, 3, port, sizeof port) && parsePort(port, next.port) &&
      improv::readString(data, length, 4, next.user, sizeof next.user) &&
      improv::readString(data, length, 5, next.password, sizeof next.password) &&
      next.host[0] != '\0';
  if (!ok) {
    sendError(Error::InvalidRpc);
    return;
  }
  pending_ = next;
  sendBrokerResult(pending_.role);
}

void Provisioning::handleWifi(const uint8_t* data, size_t length) {
  Credentials next = pending_;
  const bool ok = improv::countStrings(data, length) >= 2 &&
                  improv::readString(data, length, 0, next.ssid, sizeof next.ssid) &&
                  improv::readString(data, length, 1, next.passphrase, sizeof next.passphrase) &&
                  next.ssid[0] != '\0';
  if (!ok) {
    sendError(Error::InvalidRpc);
    return;
  }
  pending_ = next;
  state_ = ProvisionState::Joining;
  sendState();
}

void Provisioning::joined() {
  if (state_ != ProvisionState::Joining) return;
  sealCredentials(pending_);
  if (!store_.save(pending_)) {
    sendError(Error::Unknown);  // joined, but it would be forgotten at the next boot
    pending_ = stored_;
    state_ =
        credentialsValid(stored_) ? ProvisionState::Provisioned : ProvisionState::Unprovisioned;
    sendState();
    return;
  }
  stored_ = pending_;
  state_ = ProvisionState::Provisioned;
  sendState();
  sendProvisionedResult();
}

void Provisioning::joinFailed() {
  if (state_ != ProvisionState::Joining) return;
  pending_ = stored_;
  state_ = credentialsValid(stored_) ? ProvisionState::Provisioned : ProvisionState::Unprovisioned;
  sendError(Error::UnableToConnect);
  sendState();
}

improv::State Provisioning::improvState() const {
  switch (state_) {
    case ProvisionState::Joining:
      return improv::State::Provisioning;
    case ProvisionState::Provisioned:
      return improv::State::Provisioned;
    default:
      return improv::State::Ready;
  }
}

void Provisioning::sendState() {
  const uint8_t state = static_cast<uint8_t>(improvState());
  improv::writePacket(stream_, PacketType::CurrentState, &state, 1);
}

void Provisioning::sendError(Error error) {
  const uint8_t code = static_cast<uint8_t>(error);
  improv::writePacket(stream_, PacketType::ErrorState, &code, 1);
}

void Provisioning::sendBrokerResult(const char* role) {
  const char* const strings[] = {"1", role};
  improv::writeResult(stream_, Command::Broker, strings, 2);
}

void Provisioning::sendProvisionedResult() {
  // Improv's answer to the WiFi command: URLs to go on to. A msgflo board has none.
  improv::writeResult(stream_, Command::WifiSettings, nullptr, 0);
}

}  // namespace msgflo
