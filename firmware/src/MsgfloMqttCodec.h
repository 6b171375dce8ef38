// The MQTT 3.1.1 client's packets without any I/O: encoders that write a packet into a ByteSink,
// and a streaming decoder that takes the broker's bytes one at a time and says when a packet is
// complete, skipped or malformed. MqttTransport (MsgfloMqtt.h) drives them over a Client.
//
// The decoder holds one packet in a fixed buffer. It accepts only what a client may receive
// from a broker for the subset this library uses (CONNACK, PUBLISH at QoS 0 or 1, PUBACK, SUBACK,
// PINGRESP) and calls anything else malformed: the session then drops the connection, as the
// specification asks (MQTT 3.1.1, 4.8). A PUBLISH larger than the buffer is read to its end and
// reported as skipped with its packet id (so it can still be acknowledged), never delivered cut.

#ifndef MSGFLO_MQTT_CODEC_H
#define MSGFLO_MQTT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "MsgfloJson.h"
#include "MsgfloLink.h"

namespace msgflo {
namespace mqtt {

enum class PacketType : uint8_t {
  Connect = 1,
  Connack = 2,
  Publish = 3,
  Puback = 4,
  Subscribe = 8,
  Suback = 9,
  Pingreq = 12,
  Pingresp = 13,
  Disconnect = 14,
};

// The largest remaining length MQTT can encode (four length bytes).
const uint32_t kMaxRemainingLength = 268435455UL;

// Where encoders write a packet's bytes.
class ByteSink {
 public:
  virtual void put(uint8_t byte) = 0;

 protected:
  ~ByteSink() {}
};

// `<prefix><role>/<port>` as one byte sequence without copying it (msgflo-arduino's naming,
// docs/protocol.md 2.3): prefix and role in RAM, the port id in flash.
class TopicBytes : public link::ByteSource {
 public:
  TopicBytes(const char* prefix, const char* role, size_t roleLength, FlashText port);
  size_t size() const override { return prefixLength_ + roleLength_ + 1 + portLength_; }
  uint8_t at(size_t index) const override;
  // Whether `length` bytes at `data` are this topic.
  bool equals(const uint8_t* data, size_t length) const;

 private:
  const char* prefix_;
  const char* role_;
  const uint8_t* port_;
  size_t prefixLength_;
  size_t roleLength_;
  size_t portLength_;
};

// -- encoders: each writes one whole packet (PUBLISH: all but the payload, which the caller
// streams after it). They return false, writing nothing, when a field is too long for MQTT.

struct ConnectOptions {
  const char* clientId;
  const char* user;      // null: no user name
  const char* password;  // null: no password (used only with a user)
  uint16_t keepalive;    // seconds; 0 turns keepalive off
  bool cleanSession;
};

bool writeConnect(ByteSink& out, const ConnectOptions& options);
bool writePublishHeader(ByteSink& out, const link::ByteSource& topic, size_t payloadLength,
                        uint8_t qos, bool dup, uint16_t packetId);
void writePuback(ByteSink& out, uint16_t packetId);
bool writeSubscribe(ByteSink& out, uint16_t packetId, const link::ByteSource& topic, uint8_t qos);
void writePingreq(ByteSink& out);
void writeDisconnect(ByteSink& out);
// The number of bytes a remaining length takes (1..4).
uint8_t remainingLengthSize(uint32_t length);

// -- decoder

enum class DecodeError : uint8_t {
  None,
  BadType,             // a packet type a client never receives (or reserved)
  BadFlags,            // fixed-header flags, CONNACK flags, DUP on QoS 0
  BadQos,              // QoS 3, or QoS 2 (this client never subscribes with QoS 2)
  BadRemainingLength,  // more than four length bytes
  BadLength,           // a length the packet type cannot have
  BadTopic,            // empty, or longer than the packet
  BadPacketId,         // zero on a QoS 1 PUBLISH
  BadReturnCode,       // CONNACK code over 5, SUBACK code not 0, 1, 2 or 0x80
};

struct Packet {
  PacketType type;
  uint8_t qos;
  bool dup;
  bool retain;
  bool sessionPresent;  // CONNACK
  uint8_t returnCode;   // CONNACK; SUBACK: the first return code
  uint16_t packetId;    // PUBLISH at QoS 1, PUBACK, SUBACK
  bool skipped;         // PUBLISH only: too large for the buffer, topic and payload not kept
  uint32_t length;      // the remaining length
  const uint8_t* topic;
  size_t topicLength;
  const uint8_t* payload;
  size_t payloadLength;
};

class Decoder {
 public:
  enum class Event : uint8_t { None, Packet, Malformed };

  Decoder(uint8_t* buffer, size_t capacity) : buffer_(buffer), capacity_(capacity) { reset(); }

  // Feeds one byte. Packet: packet() holds a complete packet (a skipped PUBLISH included),
  // valid until the next push. Malformed: error() says why; the decoder starts afresh, but the
  // stream cannot be trusted any more and the session should drop the connection.
  Event push(uint8_t byte);
  const Packet& packet() const { return packet_; }
  DecodeError error() const { return error_; }
  size_t capacity() const { return capacity_; }
  void reset();

 private:
  enum class State : uint8_t { Header, Length, Body, Skip };

  Event header(uint8_t byte);
  Event length(uint8_t byte);
  Event startBody();
  Event skip(uint8_t byte);
  Event finish();
  Event finishPublish();
  Event malformed(DecodeError error);

  uint8_t* buffer_;
  size_t capacity_;
  State state_;
  uint8_t lengthBytes_;
  uint32_t multiplier_;
  uint32_t filled_;  // body bytes read
  uint16_t skipTopicLength_;
  DecodeError error_;
  Packet packet_;
};

template <size_t Capacity>
class StaticDecoder : public Decoder {
 public:
  StaticDecoder() : Decoder(storage_, Capacity) {}

 private:
  uint8_t storage_[Capacity];
};

}  // namespace mqtt
}  // namespace msgflo

#endif  // MSGFLO_MQTT_CODEC_H
