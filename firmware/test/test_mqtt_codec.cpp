// The MQTT 3.1.1 codec on exact byte vectors (MQTT 3.1.1 sections 2 and 3): what each encoder
// writes, what the decoder accepts, refuses and skips.

#include <doctest/doctest.h>

#include "Arduino.h"
#include "MsgfloMqttCodec.h"

using namespace msgflo;
using namespace msgflo::mqtt;

namespace {

struct Bytes : ByteSink {
  uint8_t data[4096] = {};
  size_t length = 0;
  void put(uint8_t byte) override {
    REQUIRE(length < sizeof data);
    data[length++] = byte;
  }
};

template <size_t N>
void checkBytes(const Bytes& got, const uint8_t (&expected)[N]) {
  REQUIRE(got.length == N);
  for (size_t i = 0; i < N; ++i) {
    INFO("byte " << i);
    CHECK(got.data[i] == expected[i]);
  }
}

// Feeds bytes; returns the last event, and how many bytes were taken when it came.
template <size_t N>
Decoder::Event feed(Decoder& decoder, const uint8_t (&bytes)[N], size_t* taken = 0) {
  Decoder::Event event = Decoder::Event::None;
  for (size_t i = 0; i < N; ++i) {
    event = decoder.push(bytes[i]);
    if (event != Decoder::Event::None) {
      if (taken) *taken = i + 1;
      return event;
    }
  }
  if (taken) *taken = N;
  return event;
}

template <size_t N>
DecodeError refusal(const uint8_t (&bytes)[N]) {
  StaticDecoder<64> decoder;
  const Decoder::Event event = feed(decoder, bytes);
  return event == Decoder::Event::Malformed ? decoder.error() : DecodeError::None;
}

const link::RamBytes topic(const char* text) {
  return link::RamBytes(reinterpret_cast<const uint8_t*>(text), strlen(text));
}

}  // namespace

TEST_CASE("CONNECT with user, password, keepalive and a clean session") {
  Bytes out;
  ConnectOptions options = {"dev-1", "u", "p", 30, true};
  REQUIRE(writeConnect(out, options));
  const uint8_t expected[] = {0x10, 23,  0,   4,   'M', 'Q', 'T', 'T', 4,   0xC2, 0, 30, 0,
                              5,    'd', 'e', 'v', '-', '1', 0,   1,   'u', 0,    1, 'p'};
  checkBytes(out, expected);
}

TEST_CASE("CONNECT without a user, persistent session; a password alone is left out") {
  Bytes out;
  ConnectOptions options = {"x", 0, "ignored", 0, false};
  REQUIRE(writeConnect(out, options));
  const uint8_t expected[] = {0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x00, 0, 0, 0, 1, 'x'};
  checkBytes(out, expected);
}

TEST_CASE("PUBLISH headers: QoS 0, QoS 1 with DUP and id; SUBSCRIBE, PUBACK, PINGREQ, DISCONNECT") {
  Bytes out;
  REQUIRE(writePublishHeader(out, topic("a/b"), 2, 0, true, 7));  // DUP is never set at QoS 0
  const uint8_t qos0[] = {0x30, 7, 0, 3, 'a', '/', 'b'};
  checkBytes(out, qos0);
  out.length = 0;
  REQUIRE(writePublishHeader(out, topic("a/b"), 2, 1, true, 0x1234));
  const uint8_t qos1[] = {0x3A, 9, 0, 3, 'a', '/', 'b', 0x12, 0x34};
  checkBytes(out, qos1);
  out.length = 0;
  REQUIRE(writeSubscribe(out, 0x0102, topic("a/b"), 1));
  const uint8_t subscribe[] = {0x82, 8, 1, 2, 0, 3, 'a', '/', 'b', 1};
  checkBytes(out, subscribe);
  out.length = 0;
  writePuback(out, 0xBEEF);
  writePingreq(out);
  writeDisconnect(out);
  const uint8_t small[] = {0x40, 2, 0xBE, 0xEF, 0xC0, 0, 0xE0, 0};
  checkBytes(out, small);
}

TEST_CASE("encoders refuse what MQTT cannot carry") {
  Bytes out;
  CHECK_FALSE(writePublishHeader(out, topic(""), 1, 0, false, 0));
  CHECK_FALSE(writePublishHeader(out, topic("t"), 1, 2, false, 1));
  CHECK_FALSE(writePublishHeader(out, topic("t"), kMaxRemainingLength, 0, false, 0));
  CHECK_FALSE(writeSubscribe(out, 1, topic(""), 1));
  CHECK(out.length == 0);
}

TEST_CASE("remaining lengths take one to four bytes") {
  CHECK(remainingLengthSize(0) == 1);
  CHECK(remainingLengthSize(127) == 1);
  CHECK(remainingLengthSize(128) == 2);
  CHECK(remainingLengthSize(16383) == 2);
  CHECK(remainingLengthSize(16384) == 3);
  CHECK(remainingLengthSize(2097151) == 3);
  CHECK(remainingLengthSize(2097152) == 4);
  CHECK(remainingLengthSize(kMaxRemainingLength) == 4);
  Bytes out;
  REQUIRE(writePublishHeader(out, topic("t"), 128 - 3, 0, false, 0));
  CHECK(out.data[1] == 0x80);
  CHECK(out.data[2] == 0x01);
  out.length = 0;
  REQUIRE(writePublishHeader(out, topic("t"), 2097152 - 3, 0, false, 0));
  const uint8_t four[] = {0x30, 0x80, 0x80, 0x80, 0x01, 0, 1, 't'};
  checkBytes(out, four);
}

TEST_CASE("topics are <prefix><role>/<port>, compared without copying") {
  const TopicBytes t("home/", "sensor-x", 6, F("in"));
  CHECK(t.size() == strlen("home/sensor/in"));
  char text[32] = {};
  for (size_t i = 0; i < t.size(); ++i) text[i] = static_cast<char>(t.at(i));
  CHECK(strcmp(text, "home/sensor/in") == 0);
  CHECK(t.equals(reinterpret_cast<const uint8_t*>("home/sensor/in"), 14));
  CHECK_FALSE(t.equals(reinterpret_cast<const uint8_t*>("home/sensor/im"), 14));
  CHECK_FALSE(t.equals(reinterpret_cast<const uint8_t*>("home/sensor/in2"), 15));
  CHECK(TopicBytes("", "r", 1, F("p")).size() == 3);
}

TEST_CASE("the decoder reads CONNACK, PUBLISH, PUBACK, SUBACK and PINGRESP") {
  StaticDecoder<64> decoder;
  const uint8_t connack[] = {0x20, 2, 0x01, 0x00};
  REQUIRE(feed(decoder, connack) == Decoder::Event::Packet);
  CHECK(decoder.packet().type == PacketType::Connack);
  CHECK(decoder.packet().sessionPresent);
  CHECK(decoder.packet().returnCode == 0);
  const uint8_t refused[] = {0x20, 2, 0x00, 0x05};
  REQUIRE(feed(decoder, refused) == Decoder::Event::Packet);
  CHECK(decoder.packet().returnCode == 5);
  CHECK_FALSE(decoder.packet().sessionPresent);

  const uint8_t publish0[] = {0x31, 7, 0, 3, 'a', '/', 'b', 'h', 'i'};
  REQUIRE(feed(decoder, publish0) == Decoder::Event::Packet);
  const Packet& p = decoder.packet();
  CHECK(p.type == PacketType::Publish);
  CHECK(p.qos == 0);
  CHECK(p.retain);
  CHECK(p.topicLength == 3);
  CHECK(memcmp(p.topic, "a/b", 3) == 0);
  CHECK(p.payloadLength == 2);
  CHECK(memcmp(p.payload, "hi", 2) == 0);

  const uint8_t publish1[] = {0x3A, 6, 0, 1, 't', 0x01, 0x02, 'x'};
  REQUIRE(feed(decoder, publish1) == Decoder::Event::Packet);
  CHECK(decoder.packet().qos == 1);
  CHECK(decoder.packet().dup);
  CHECK(decoder.packet().packetId == 0x0102);
  CHECK(decoder.packet().payloadLength == 1);

  const uint8_t empty[] = {0x30, 3, 0, 1, 't'};  // an empty payload
  REQUIRE(feed(decoder, empty) == Decoder::Event::Packet);
  CHECK(decoder.packet().payloadLength == 0);

  const uint8_t puback[] = {0x40, 2, 0xAB, 0xCD};
  REQUIRE(feed(decoder, puback) == Decoder::Event::Packet);
  CHECK(decoder.packet().type == PacketType::Puback);
  CHECK(decoder.packet().packetId == 0xABCD);

  const uint8_t suback[] = {0x90, 3, 0, 9, 0x80};
  REQUIRE(feed(decoder, suback) == Decoder::Event::Packet);
  CHECK(decoder.packet().type == PacketType::Suback);
  CHECK(decoder.packet().packetId == 9);
  CHECK(decoder.packet().returnCode == 0x80);

  const uint8_t pingresp[] = {0xD0, 0};
  REQUIRE(feed(decoder, pingresp) == Decoder::Event::Packet);
  CHECK(decoder.packet().type == PacketType::Pingresp);
}

TEST_CASE("packets a client never receives, bad flags and bad lengths are malformed") {
  const uint8_t connect[] = {0x10, 0};
  const uint8_t subscribe[] = {0x82, 0};
  const uint8_t pubrec[] = {0x50, 2, 0, 1};
  const uint8_t pubrel[] = {0x62, 2, 0, 1};
  const uint8_t unsuback[] = {0xB0, 2, 0, 1};
  const uint8_t pingreq[] = {0xC0, 0};
  const uint8_t reserved0[] = {0x00, 0};
  const uint8_t reserved15[] = {0xF0, 0};
  CHECK(refusal(connect) == DecodeError::BadType);
  CHECK(refusal(subscribe) == DecodeError::BadType);
  CHECK(refusal(pubrec) == DecodeError::BadType);
  CHECK(refusal(pubrel) == DecodeError::BadType);
  CHECK(refusal(unsuback) == DecodeError::BadType);
  CHECK(refusal(pingreq) == DecodeError::BadType);
  CHECK(refusal(reserved0) == DecodeError::BadType);
  CHECK(refusal(reserved15) == DecodeError::BadType);

  const uint8_t connackFlags[] = {0x21, 2, 0, 0};
  const uint8_t connackAckFlags[] = {0x20, 2, 0x02, 0};
  const uint8_t connackCode[] = {0x20, 2, 0, 6};
  const uint8_t connackLong[] = {0x20, 3, 0, 0, 0};
  const uint8_t pubackShort[] = {0x40, 1, 0};
  const uint8_t pingrespLong[] = {0xD0, 1, 0};
  const uint8_t subackShort[] = {0x90, 2, 0, 1};
  const uint8_t subackCode[] = {0x90, 3, 0, 1, 3};
  CHECK(refusal(connackFlags) == DecodeError::BadFlags);
  CHECK(refusal(connackAckFlags) == DecodeError::BadFlags);
  CHECK(refusal(connackCode) == DecodeError::BadReturnCode);
  CHECK(refusal(connackLong) == DecodeError::BadLength);
  CHECK(refusal(pubackShort) == DecodeError::BadLength);
  CHECK(refusal(pingrespLong) == DecodeError::BadLength);
  CHECK(refusal(subackShort) == DecodeError::BadLength);
  CHECK(refusal(subackCode) == DecodeError::BadReturnCode);

  const uint8_t dupAtQos0[] = {0x38, 3, 0, 1, 't'};
  const uint8_t qos2[] = {0x34, 5, 0, 1, 't', 0, 1};
  const uint8_t qos3[] = {0x36, 5, 0, 1, 't', 0, 1};
  const uint8_t fiveLengthBytes[] = {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
  const uint8_t topicPastEnd[] = {0x30, 4, 0, 5, 'a', 'b'};
  const uint8_t emptyTopic[] = {0x30, 3, 0, 0, 'x'};
  const uint8_t noPacketId[] = {0x32, 4, 0, 1, 't', 0};
  const uint8_t zeroPacketId[] = {0x32, 5, 0, 1, 't', 0, 0};
  CHECK(refusal(dupAtQos0) == DecodeError::BadFlags);
  CHECK(refusal(qos2) == DecodeError::BadQos);
  CHECK(refusal(qos3) == DecodeError::BadQos);
  CHECK(refusal(fiveLengthBytes) == DecodeError::BadRemainingLength);
  CHECK(refusal(topicPastEnd) == DecodeError::BadTopic);
  CHECK(refusal(emptyTopic) == DecodeError::BadTopic);
  CHECK(refusal(noPacketId) == DecodeError::BadLength);
  CHECK(refusal(zeroPacketId) == DecodeError::BadPacketId);
}

TEST_CASE("a malformed packet is refused at its first bad byte; the decoder then starts afresh") {
  StaticDecoder<64> decoder;
  const uint8_t bad[] = {0x10, 0x20, 2, 0, 0};
  size_t taken = 0;
  REQUIRE(feed(decoder, bad, &taken) == Decoder::Event::Malformed);
  CHECK(taken == 1);
  const uint8_t good[] = {0x20, 2, 0, 0};
  CHECK(feed(decoder, good) == Decoder::Event::Packet);
  CHECK(decoder.error() == DecodeError::None);
}

TEST_CASE("a PUBLISH larger than the buffer is skipped to its end with its packet id") {
  StaticDecoder<16> decoder;
  uint8_t big[2 + 2 + 3 + 2 + 100] = {0x32, 107, 0, 3, 'a', '/', 'b', 0x00, 0x2A};
  size_t taken = 0;
  REQUIRE(feed(decoder, big, &taken) == Decoder::Event::Packet);
  CHECK(taken == sizeof big);
  CHECK(decoder.packet().skipped);
  CHECK(decoder.packet().packetId == 42);
  CHECK(decoder.packet().topic == nullptr);
  CHECK(decoder.packet().payloadLength == 0);
  const uint8_t next[] = {0x30, 4, 0, 1, 't', 'x'};  // the stream goes on in step
  REQUIRE(feed(decoder, next) == Decoder::Event::Packet);
  CHECK_FALSE(decoder.packet().skipped);
  CHECK(decoder.packet().payload[0] == 'x');

  uint8_t badTopic[2 + 40] = {0x30, 40, 0x01, 0x00};  // a 256-byte topic in 40 bytes
  REQUIRE(feed(decoder, badTopic) == Decoder::Event::Malformed);
  CHECK(decoder.error() == DecodeError::BadTopic);
  uint8_t zeroId[2 + 40] = {0x32, 40, 0, 1, 't', 0, 0};
  REQUIRE(feed(decoder, zeroId) == Decoder::Event::Malformed);
  CHECK(decoder.error() == DecodeError::BadPacketId);
  const uint8_t bigSuback[] = {0x90, 20, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  REQUIRE(feed(decoder, bigSuback) == Decoder::Event::Malformed);
  CHECK(decoder.error() == DecodeError::BadLength);
}

TEST_CASE("random bytes never crash the decoder and every packet it yields is in bounds") {
  StaticDecoder<32> decoder;
  uint32_t state = 12345;
  int packets = 0, malformed = 0;
  for (int i = 0; i < 200000; ++i) {
    state = state * 1103515245u + 12345u;
    const Decoder::Event event = decoder.push(static_cast<uint8_t>(state >> 16));
    if (event == Decoder::Event::Malformed) ++malformed;
    if (event == Decoder::Event::Packet) {
      ++packets;
      const Packet& p = decoder.packet();
      if (p.type == PacketType::Publish && !p.skipped) {
        CHECK(p.topicLength + p.payloadLength <= decoder.capacity());
      }
    }
  }
  CHECK(malformed > 0);
  CHECK(packets + malformed > 0);
}
