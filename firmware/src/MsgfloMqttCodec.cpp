// MQTT 3.1.1 packets: encoders and the streaming decoder; see MsgfloMqttCodec.h.

#include "MsgfloMqttCodec.h"

#include <string.h>

namespace msgflo {
namespace mqtt {

namespace {
const uint8_t kProtocolLevel = 4;  // MQTT 3.1.1
const uint8_t kConnectUser = 0x80;
const uint8_t kConnectPassword = 0x40;
const uint8_t kConnectClean = 0x02;
const size_t kMaxString = 0xFFFF;

size_t textLength(const char* text) {
  return text ? strlen(text) : 0;
}

void put16(ByteSink& out, size_t value) {
  out.put(static_cast<uint8_t>(value >> 8));
  out.put(static_cast<uint8_t>(value & 0xFF));
}

void putRemainingLength(ByteSink& out, uint32_t length) {
  do {
    uint8_t digit = static_cast<uint8_t>(length % 128);
    length /= 128;
    if (length > 0) digit = static_cast<uint8_t>(digit | 0x80);
    out.put(digit);
  } while (length > 0);
}

void putString(ByteSink& out, const char* text, size_t length) {
  put16(out, length);
  for (size_t i = 0; i < length; ++i) out.put(static_cast<uint8_t>(text[i]));
}

void putSource(ByteSink& out, const link::ByteSource& source) {
  const size_t length = source.size();
  put16(out, length);
  for (size_t i = 0; i < length; ++i) out.put(source.at(i));
}

uint16_t read16(const uint8_t* at) {
  return static_cast<uint16_t>(at[0] << 8 | at[1]);
}

uint8_t fixedHeader(PacketType type, uint8_t flags) {
  return static_cast<uint8_t>(static_cast<uint8_t>(type) << 4 | flags);
}
}  // namespace

// -- TopicBytes -------------------------------------------------------------------------------

TopicBytes::TopicBytes(const char* prefix, const char* role, size_t roleLength, FlashText port)
    : prefix_(prefix ? prefix : ""),
      role_(role ? role : ""),
      port_(reinterpret_cast<const uint8_t*>(port)),
      prefixLength_(textLength(prefix)),
      roleLength_(role ? roleLength : 0),
      portLength_(port ? flashLength(port) : 0) {}

uint8_t TopicBytes::at(size_t index) const {
  if (index < prefixLength_) return static_cast<uint8_t>(prefix_[index]);
  index -= prefixLength_;
  if (index < roleLength_) return static_cast<uint8_t>(role_[index]);
  index -= roleLength_;
  if (index == 0) return '/';
  return MSGFLO_PGM_BYTE(port_ + index - 1);
}

bool TopicBytes::equals(const uint8_t* data, size_t length) const {
  if (length != size()) return false;
  for (size_t i = 0; i < length; ++i) {
    if (data[i] != at(i)) return false;
  }
  return true;
}

// -- encoders ---------------------------------------------------------------------------------

uint8_t remainingLengthSize(uint32_t length) {
  uint8_t size = 1;
  while (length >= 128) {
    length /= 128;
    ++size;
  }
  return size;
}

bool writeConnect(ByteSink& out, const ConnectOptions& options) {
  const size_t idLength = textLength(options.clientId);
  const bool hasUser = options.user != 0;
  const bool hasPassword = hasUser && options.password != 0;
  const size_t userLength = textLength(options.user);
  const size_t passwordLength = hasPassword ? textLength(options.password) : 0;
  if (idLength > kMaxString || userLength > kMaxString || passwordLength > kMaxString) {
    return false;
  }
  // protocol name (6), level, flags, keepalive (2), then the payload's length-prefixed strings
  size_t length = 10 + 2 + idLength;
  if (hasUser) length += 2 + userLength;
  if (hasPassword) length += 2 + passwordLength;
  uint8_t flags = options.cleanSession ? kConnectClean : 0;
  if (hasUser) flags = static_cast<uint8_t>(flags | kConnectUser);
  if (hasPassword) flags = static_cast<uint8_t>(flags | kConnectPassword);
  out.put(fixedHeader(PacketType::Connect, 0));
  putRemainingLength(out, static_cast<uint32_t>(length));
  putString(out, "MQTT", 4);
  out.put(kProtocolLevel);
  out.put(flags);
  put16(out, options.keepalive);
  putString(out, options.clientId ? options.clientId : "", idLength);
  if (hasUser) putString(out, options.user, userLength);
  if (hasPassword) putString(out, options.password, passwordLength);
  return true;
}

bool writePublishHeader(ByteSink& out, const link::ByteSource& topic, size_t payloadLength,
                        uint8_t qos, bool dup, uint16_t packetId) {
  const size_t topicLength = topic.size();
  const size_t overhead = 2 + topicLength + (qos > 0 ? 2 : 0);
  if (topicLength == 0 || topicLength > kMaxString || qos > 1 ||
      payloadLength > kMaxRemainingLength - overhead) {
    return false;
  }
  uint8_t flags = static_cast<uint8_t>(qos << 1);
  if (dup && qos > 0) flags = static_cast<uint8_t>(flags | 0x08);
  out.put(fixedHeader(PacketType::Publish, flags));
  putRemainingLength(out, static_cast<uint32_t>(overhead + payloadLength));
  putSource(out, topic);
  if (qos > 0) put16(out, packetId);
  return true;
}

void writePuback(ByteSink& out, uint16_t packetId) {
  out.put(fixedHeader(PacketType::Puback, 0));
  out.put(2);
  put16(out, packetId);
}

bool writeSubscribe(ByteSink& out, uint16_t packetId, const link::ByteSource& topic, uint8_t qos) {
  const size_t topicLength = topic.size();
  if (topicLength == 0 || topicLength > kMaxString || qos > 2) return false;
  out.put(fixedHeader(PacketType::Subscribe, 0x02));  // the reserved flags are 0010
  putRemainingLength(out, static_cast<uint32_t>(2 + 2 + topicLength + 1));
  put16(out, packetId);
  putSource(out, topic);
  out.put(qos);
  return true;
}

void writePingreq(ByteSink& out) {
  out.put(fixedHeader(PacketType::Pingreq, 0));
  out.put(0);
}

void writeDisconnect(ByteSink& out) {
  out.put(fixedHeader(PacketType::Disconnect, 0));
  out.put(0);
}

// -- Decoder ----------------------------------------------------------------------------------

void Decoder::reset() {
  state_ = State::Header;
  lengthBytes_ = 0;
  multiplier_ = 1;
  filled_ = 0;
  skipTopicLength_ = 0;
  memset(&packet_, 0, sizeof packet_);
}

Decoder::Event Decoder::malformed(DecodeError error) {
  error_ = error;
  reset();
  return Event::Malformed;
}

Decoder::Event Decoder::push(uint8_t byte) {
  switch (state_) {
    case State::Header:
      return header(byte);
    case State::Length:
      return length(byte);
    case State::Body:
      buffer_[filled_++] = byte;
      return filled_ == packet_.length ? finish() : Event::None;
    case State::Skip:
      return skip(byte);
  }
  return Event::None;
}

Decoder::Event Decoder::header(uint8_t byte) {
  reset();
  error_ = DecodeError::None;
  const uint8_t type = static_cast<uint8_t>(byte >> 4);
  const uint8_t flags = static_cast<uint8_t>(byte & 0x0F);
  switch (static_cast<PacketType>(type)) {
    case PacketType::Publish: {
      packet_.qos = static_cast<uint8_t>(flags >> 1 & 0x03);
      packet_.dup = (flags & 0x08) != 0;
      packet_.retain = (flags & 0x01) != 0;
      if (packet_.qos > 1) return malformed(DecodeError::BadQos);
      if (packet_.dup && packet_.qos == 0) return malformed(DecodeError::BadFlags);
      break;
    }
    case PacketType::Connack:
    case PacketType::Puback:
    case PacketType::Suback:
    case PacketType::Pingresp:
      if (flags != 0) return malformed(DecodeError::BadFlags);
      break;
    default:
      return malformed(DecodeError::BadType);
  }
  packet_.type = static_cast<PacketType>(type);
  state_ = State::Length;
  return Event::None;
}

Decoder::Event Decoder::length(uint8_t byte) {
  packet_.length += static_cast<uint32_t>(byte & 0x7F) * multiplier_;
  ++lengthBytes_;
  if (byte & 0x80) {
    if (lengthBytes_ == 4) return malformed(DecodeError::BadRemainingLength);
    multiplier_ *= 128;
    return Event::None;
  }
  return startBody();
}

Decoder::Event Decoder::startBody() {
  const uint32_t length = packet_.length;
  switch (packet_.type) {
    case PacketType::Connack:
    case PacketType::Puback:
      if (length != 2) return malformed(DecodeError::BadLength);
      break;
    case PacketType::Pingresp:
      if (length != 0) return malformed(DecodeError::BadLength);
      break;
    case PacketType::Suback:
      if (length < 3) return malformed(DecodeError::BadLength);
      break;
    default:  // PUBLISH: topic length, a topic of at least one byte, the packet id at QoS 1
      if (length < 3u + (packet_.qos ? 2u : 0u)) return malformed(DecodeError::BadLength);
      break;
  }
  if (length == 0) return finish();
  if (length > capacity_) {
    if (packet_.type != PacketType::Publish) return malformed(DecodeError::BadLength);
    state_ = State::Skip;
    return Event::None;
  }
  state_ = State::Body;
  return Event::None;
}

// An oversized PUBLISH: only its topic length and packet id are kept, to acknowledge it.
Decoder::Event Decoder::skip(uint8_t byte) {
  const uint32_t at = filled_++;
  if (at == 0) {
    skipTopicLength_ = static_cast<uint16_t>(byte << 8);
  } else if (at == 1) {
    skipTopicLength_ = static_cast<uint16_t>(skipTopicLength_ | byte);
    const uint32_t needed = 2u + skipTopicLength_ + (packet_.qos ? 2u : 0u);
    if (skipTopicLength_ == 0 || needed > packet_.length) return malformed(DecodeError::BadTopic);
  } else if (packet_.qos && at == 2u + skipTopicLength_) {
    packet_.packetId = static_cast<uint16_t>(byte << 8);
  } else if (packet_.qos && at == 3u + skipTopicLength_) {
    packet_.packetId = static_cast<uint16_t>(packet_.packetId | byte);
    if (packet_.packetId == 0) return malformed(DecodeError::BadPacketId);
  }
  if (filled_ < packet_.length) return Event::None;
  packet_.skipped = true;
  state_ = State::Header;
  return Event::Packet;
}

Decoder::Event Decoder::finish() {
  state_ = State::Header;
  const uint8_t* body = buffer_;
  switch (packet_.type) {
    case PacketType::Connack:
      if ((body[0] & 0xFE) != 0) return malformed(DecodeError::BadFlags);
      if (body[1] > 5) return malformed(DecodeError::BadReturnCode);
      packet_.sessionPresent = (body[0] & 0x01) != 0;
      packet_.returnCode = body[1];
      return Event::Packet;
    case PacketType::Puback:
      packet_.packetId = read16(body);
      return Event::Packet;
    case PacketType::Suback:
      for (uint32_t i = 2; i < packet_.length; ++i) {
        const uint8_t code = body[i];
        if (code > 2 && code != 0x80) return malformed(DecodeError::BadReturnCode);
      }
      packet_.packetId = read16(body);
      packet_.returnCode = body[2];
      return Event::Packet;
    case PacketType::Publish:
      return finishPublish();
    default:  // PINGRESP
      return Event::Packet;
  }
}

Decoder::Event Decoder::finishPublish() {
  const uint8_t* body = buffer_;
  const size_t topicLength = read16(body);
  const size_t idLength = packet_.qos ? 2 : 0;
  if (topicLength == 0 || 2 + topicLength + idLength > packet_.length) {
    return malformed(DecodeError::BadTopic);
  }
  packet_.topic = body + 2;
  packet_.topicLength = topicLength;
  if (packet_.qos) {
    packet_.packetId = read16(body + 2 + topicLength);
    if (packet_.packetId == 0) return malformed(DecodeError::BadPacketId);
  }
  packet_.payload = body + 2 + topicLength + idLength;
  packet_.payloadLength = packet_.length - 2 - topicLength - idLength;
  return Event::Packet;
}

}  // namespace mqtt
}  // namespace msgflo
