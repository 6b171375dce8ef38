// The participant and its serial link transport over a scripted fake Stream: what a host sees
// (hello, paged description, pongs, messages, errors) and what reaches the inport callbacks.

#include <doctest/doctest.h>
#include <stdio.h>
#include <stdlib.h>

#include "Arduino.h"
#include "Msgflo.h"

using namespace msgflo;
using link::FrameType;

namespace {

// A label that needs every kind of escaping: quotes, backslash, control characters, UTF-8.
#define LABEL "A \"quoted\" C:\\dir label,\ta tab, a newline\n, \x01 and gr\xc3\xbc\xc3\x9f"
const char kExpected[] =
    "{\"component\":\"Echo\",\"label\":\"A \\\"quoted\\\" C:\\\\dir label,\\ta tab, a "
    "newline\\n, \\u0001 and gr\xc3\xbc\xc3\x9f\",\"icon\":\"repeat\",\"inports\":[{\"id\":\"in\","
    "\"type\":\"string\"},{\"id\":\"led\",\"type\":\"boolean\"}],\"outports\":[{\"id\":\"out\","
    "\"type\":\"string\"},{\"id\":\"raw\",\"type\":\"any\"}],\"version\":\"1.2.3\"}";

struct Received {
  FrameType type;
  uint8_t seq;
  uint8_t body[link::kMaxFrame];
  size_t bodyLength;
};

struct Inbox {
  int calls = 0;
  uint8_t payload[link::kMaxFrame] = {};
  size_t length = 0;
};

void remember(const uint8_t* payload, size_t length, void* context) {
  Inbox& inbox = *static_cast<Inbox*>(context);
  ++inbox.calls;
  memcpy(inbox.payload, payload, length);
  inbox.length = length;
}

uint16_t u16(const uint8_t* at) {
  return static_cast<uint16_t>(at[0] << 8 | at[1]);
}

// The host end: writes frames into the device's input, decodes the device's output.
template <size_t MaxFrame>
struct Rig {
  fake::ScriptedStream<8192> serial;
  SerialLink<MaxFrame> link{serial};
  StaticParticipant<2, 2> participant{F("Echo")};
  Inbox in, led;
  Outport out, raw;
  link::StaticLinkDecoder<link::kMaxFrame> decoder;
  size_t readPos = 0;
  uint8_t seq = 100;

  Rig() {
    participant.setLabel(F(LABEL));
    participant.setIcon(F("repeat"));
    participant.setVersion(F("1.2.3"));
    REQUIRE(participant.inport(F("in"), F("string"), remember, &in));
    REQUIRE(participant.inport(F("led"), F("boolean"), remember, &led));
    out = participant.outport(F("out"), F("string"));
    raw = participant.outport(F("raw"), 0);
    REQUIRE(out.valid());
    REQUIRE(raw.valid());
    participant.begin(link);
  }

  void sendRaw(const uint8_t* bytes, size_t length) {
    serial.script(bytes, length);
    participant.loop();
  }

  void sendFrame(link::FrameBytes& frame, bool built) {
    REQUIRE(built);
    fake::BufferPrint<300> wire;
    link::writeFrame(wire, frame);
    sendRaw(wire.data(), wire.length());
  }

  // Frames the device wrote since the last call, at most `capacity` of them.
  size_t take(Received* frames, size_t capacity) {
    size_t count = 0;
    const fake::BufferPrint<8192>& written = serial.written();
    REQUIRE_FALSE(written.overflowed());
    for (; readPos < written.length(); ++readPos) {
      const auto event = decoder.push(written.data()[readPos]);
      REQUIRE(event != link::LinkDecoder::Event::Error);
      if (event != link::LinkDecoder::Event::Frame) continue;
      REQUIRE(count < capacity);
      const link::Frame& f = decoder.frame();
      frames[count].type = f.type;
      frames[count].seq = f.seq;
      memcpy(frames[count].body, f.body, f.bodyLength);
      frames[count].bodyLength = f.bodyLength;
      ++count;
    }
    return count;
  }

  Received one() {
    Received frames[2];
    REQUIRE(take(frames, 2) == 1);
    return frames[0];
  }

  // The whole description, read back slice by slice as the gateway does.
  size_t describe(char* text, size_t capacity, size_t& replies, size_t& largest) {
    size_t have = 0;
    size_t total = 1;
    replies = largest = 0;
    while (have < total) {
      link::FrameBytes frame;
      const uint8_t requestSeq = seq++;
      sendFrame(frame, link::buildDescribeRequest(frame, requestSeq, static_cast<uint16_t>(have)));
      const Received reply = one();
      REQUIRE(reply.type == FrameType::Describe);
      REQUIRE(reply.seq == requestSeq);
      REQUIRE(reply.bodyLength >= 4);
      REQUIRE(u16(reply.body) == have);
      total = u16(reply.body + 2);
      const size_t length = reply.bodyLength - 4;
      REQUIRE(length > 0);
      REQUIRE(have + length <= total);
      REQUIRE(total < capacity);
      memcpy(text + have, reply.body + 4, length);
      have += length;
      ++replies;
      if (length > largest) largest = length;
    }
    text[have] = 0;
    return have;
  }
};

// Writes the description, and the device's bytes on the wire, where the pytest wrapper decodes
// them with the gateway's Python codec, json module and validator
// (tests/bridges/test_firmware_host.py).
void dump(const char* variable, const uint8_t* data, size_t length) {
  const char* path = getenv(variable);
  if (!path) return;
  FILE* file = fopen(path, "wb");
  REQUIRE(file);
  fwrite(data, 1, length, file);
  fclose(file);
}

}  // namespace

TEST_CASE("the device says hello at start, with its max_frame, name and version") {
  Rig<link::kAvrMaxFrame> rig;
  const Received hello = rig.one();
  REQUIRE(hello.type == FrameType::Hello);
  const uint8_t expected[] = {1, 60, 4, 'E', 'c', 'h', 'o', 5, '1', '.', '2', '.', '3'};
  REQUIRE(hello.bodyLength == sizeof expected);
  CHECK(memcmp(hello.body, expected, sizeof expected) == 0);
  rig.link.sendHello();
  CHECK(rig.one().seq == static_cast<uint8_t>(hello.seq + 1));
}

TEST_CASE("a paged description from a 60-byte device is the escaped JSON, slice by slice") {
  Rig<link::kAvrMaxFrame> rig;
  rig.one();
  char text[1024];
  size_t replies = 0;
  size_t largest = 0;
  const size_t length = rig.describe(text, sizeof text, replies, largest);
  CHECK(length == strlen(kExpected));
  CHECK(strcmp(text, kExpected) == 0);
  CHECK(largest == link::kAvrMaxFrame - 8);  // a slice fills the device's frame buffer
  CHECK(replies == (length + largest - 1) / largest);
  dump("MSGFLO_DESCRIPTION_OUT", reinterpret_cast<const uint8_t*>(text), strlen(text));
  dump("MSGFLO_DEVICE_WIRE_OUT", rig.serial.written().data(), rig.serial.written().length());
}

TEST_CASE("a 254-byte device sends the same text in 246-byte slices") {
  Rig<link::kMaxFrame> rig;
  rig.one();
  char text[1024];
  size_t replies = 0;
  size_t largest = 0;
  rig.describe(text, sizeof text, replies, largest);
  CHECK(strcmp(text, kExpected) == 0);
  CHECK(replies == 2);
  CHECK(largest == 246);
}

TEST_CASE("a describe request past the end is a bad body; at the end an empty slice") {
  Rig<link::kAvrMaxFrame> rig;
  rig.one();
  link::FrameBytes frame;
  const uint16_t total = static_cast<uint16_t>(strlen(kExpected));
  rig.sendFrame(frame, link::buildDescribeRequest(frame, 7, total));
  Received reply = rig.one();
  CHECK(reply.type == FrameType::Describe);
  CHECK(reply.bodyLength == 4);
  rig.sendFrame(frame, link::buildDescribeRequest(frame, 8, static_cast<uint16_t>(total + 1)));
  reply = rig.one();
  CHECK(reply.type == FrameType::Error);
  CHECK(reply.seq == 8);
  CHECK(reply.body[0] == static_cast<uint8_t>(link::DeviceErrorCode::BadBody));
}

TEST_CASE("ping: a pong with the receive error counters, echoing the seq") {
  Rig<link::kAvrMaxFrame> rig;
  rig.one();
  const uint8_t noise[] = {0x42, 0x17, 0x00, 0x05, 0x01, 0x02, 0x03, 0x04, 0x00, 0x01, 0x00};
  rig.sendRaw(noise, sizeof noise);  // bad COBS, bad CRC, too short
  link::FrameBytes frame;
  rig.sendFrame(frame, link::buildPing(frame, 200));
  const Received pong = rig.one();
  REQUIRE(pong.type == FrameType::Pong);
  CHECK(pong.seq == 200);
  REQUIRE(pong.bodyLength == 8);
  CHECK(u16(pong.body) == 1);      // COBS
  CHECK(u16(pong.body + 2) == 1);  // CRC
  CHECK(u16(pong.body + 4) == 0);  // overflow
  CHECK(u16(pong.body + 6) == 1);  // rejected: too short
  CHECK(rig.link.counters().cobs == 1);
}

TEST_CASE("messages reach the inport callbacks; an unknown port is an error") {
  Rig<link::kAvrMaxFrame> rig;
  rig.one();
  link::FrameBytes frame;
  const uint8_t on[] = {'t', 'r', 'u', 'e'};
  rig.sendFrame(frame, link::buildMessage(frame, 1, 1, on, sizeof on));
  CHECK(rig.led.calls == 1);
  CHECK(rig.in.calls == 0);
  CHECK(rig.led.length == 4);
  CHECK(memcmp(rig.led.payload, on, 4) == 0);
  rig.sendFrame(frame, link::buildMessage(frame, 2, 0, on, 0));  // empty payloads are fine
  CHECK(rig.in.calls == 1);
  CHECK(rig.in.length == 0);
  Received frames[1];
  CHECK(rig.take(frames, 1) == 0);  // no acknowledgement in version 1
  rig.sendFrame(frame, link::buildMessage(frame, 3, 2, on, sizeof on));
  const Received error = rig.one();
  CHECK(error.type == FrameType::Error);
  CHECK(error.seq == 3);
  CHECK(error.body[0] == static_cast<uint8_t>(link::DeviceErrorCode::NoSuchPort));
}

TEST_CASE("sends become M frames with the outport index and the payload bytes") {
  Rig<link::kAvrMaxFrame> rig;
  const uint8_t helloSeq = rig.one().seq;
  const uint8_t bytes[] = {0, 1, 2, 0};
  JsonBuffer<64> json;
  JsonWriter(json).beginObject().key("t").decimal(21.456f, 1).key("s").string("a\"b").endObject();
  CHECK(rig.out.send("hi"));
  CHECK(rig.out.send(F("flash")));
  CHECK(rig.raw.sendInteger(-42));
  CHECK(rig.raw.sendDecimal(3.14159f, 3));
  CHECK(rig.raw.sendBoolean(true));
  CHECK(rig.raw.sendBoolean(false));
  CHECK(rig.raw.sendBytes(bytes, sizeof bytes));
  CHECK(rig.out.sendJson(json));
  const char* expected[] = {"hi",   "flash", "-42", "3.142",
                            "true", "false", "",    "{\"t\":21.5,\"s\":\"a\\\"b\"}"};
  const uint8_t ports[] = {0, 0, 1, 1, 1, 1, 1, 0};
  Received frames[8];
  REQUIRE(rig.take(frames, 8) == 8);
  for (size_t i = 0; i < 8; ++i) {
    CAPTURE(i);
    CHECK(frames[i].type == FrameType::Message);
    CHECK(frames[i].seq == static_cast<uint8_t>(helloSeq + 1 + i));
    CHECK(frames[i].body[0] == ports[i]);
    if (i == 6) {
      REQUIRE(frames[i].bodyLength == 1 + sizeof bytes);
      CHECK(memcmp(frames[i].body + 1, bytes, sizeof bytes) == 0);
    } else {
      REQUIRE(frames[i].bodyLength == 1 + strlen(expected[i]));
      CHECK(memcmp(frames[i].body + 1, expected[i], strlen(expected[i])) == 0);
    }
  }
}

TEST_CASE("what cannot be sent is refused, never cut") {
  Rig<link::kAvrMaxFrame> rig;
  rig.one();
  static uint8_t big[link::kMaxBody] = {};
  CHECK(rig.out.sendBytes(big, link::kMaxBody - 1));  // 249: the largest payload
  CHECK_FALSE(rig.out.sendBytes(big, link::kMaxBody));
  JsonBuffer<4> small;
  JsonWriter(small).string("too long");
  CHECK_FALSE(rig.out.sendJson(small));
  CHECK_FALSE(Outport().send("x"));                                    // an invalid handle
  CHECK_FALSE(rig.participant.outport(F("third"), F("any")).valid());  // the table is full
  CHECK_FALSE(rig.participant.inport(F("third"), F("any"), remember, &rig.in));
  Received frames[2];
  CHECK(rig.take(frames, 2) == 1);
}

TEST_CASE("unknown types and bad bodies are answered with error frames") {
  Rig<link::kAvrMaxFrame> rig;
  rig.one();
  link::FrameBytes frame;
  const uint8_t body[] = {1};
  frame.begin(static_cast<FrameType>('Z'), 50);
  rig.sendFrame(frame, frame.close());
  Received error = rig.one();
  CHECK(error.type == FrameType::Error);
  CHECK(error.seq == 50);
  CHECK(error.body[0] == static_cast<uint8_t>(link::DeviceErrorCode::UnknownType));
  frame.begin(FrameType::Ping, 51);  // a ping with a body
  rig.sendFrame(frame, frame.addBytes(body, 1) && frame.close());
  error = rig.one();
  CHECK(error.seq == 51);
  CHECK(error.body[0] == static_cast<uint8_t>(link::DeviceErrorCode::BadBody));
  rig.sendFrame(frame, link::buildHello(frame, 52, "host", "1", 60));  // device -> host only
  error = rig.one();
  CHECK(error.seq == 52);
  CHECK(error.body[0] == static_cast<uint8_t>(link::DeviceErrorCode::UnknownType));
}

TEST_CASE("an oversized frame: one TOO_LONG error, counted, and the next frame works") {
  Rig<link::kAvrMaxFrame> rig;
  const uint8_t helloSeq = rig.one().seq;
  static uint8_t payload[100] = {};
  link::FrameBytes frame;
  rig.sendFrame(frame, link::buildMessage(frame, 9, 0, payload, 56));  // 61 bytes
  const Received error = rig.one();
  CHECK(error.type == FrameType::Error);
  CHECK(error.seq == static_cast<uint8_t>(helloSeq + 1));  // its own: the seq was not read
  CHECK(error.body[0] == static_cast<uint8_t>(link::DeviceErrorCode::TooLong));
  CHECK(rig.in.calls == 0);
  rig.sendFrame(frame, link::buildMessage(frame, 10, 0, payload, 55));  // 60 bytes: fits
  CHECK(rig.in.calls == 1);
  CHECK(rig.in.length == 55);
  rig.sendFrame(frame, link::buildPing(frame, 11));
  const Received pong = rig.one();
  CHECK(u16(pong.body + 4) == 1);
}

namespace {
void echo(const uint8_t* payload, size_t length, void* context) {
  static_cast<Outport*>(context)->sendBytes(payload, length);
}
}  // namespace

TEST_CASE("a callback may send at once: an echo device") {
  fake::ScriptedStream<1024> serial;
  SerialLink<> link(serial);
  StaticParticipant<1, 1> participant(F("Echo"));
  static Outport out;
  REQUIRE(participant.inport(F("in"), F("any"), echo, &out));
  out = participant.outport(F("out"), F("any"));
  participant.begin(link);
  link::FrameBytes frame;
  const uint8_t text[] = "hello";
  REQUIRE(link::buildMessage(frame, 1, 0, text, 5));
  fake::BufferPrint<64> wire;
  link::writeFrame(wire, frame);
  serial.script(wire.data(), wire.length());
  participant.loop();
  link::StaticLinkDecoder<link::kMaxFrame> decoder;
  int frames = 0;
  for (size_t i = 0; i < serial.written().length(); ++i) {
    if (decoder.push(serial.written().data()[i]) == link::LinkDecoder::Event::Frame) ++frames;
  }
  CHECK(frames == 2);  // hello, then the echo
  CHECK(decoder.frame().type == FrameType::Message);
  CHECK(decoder.frame().dataLength == 5);
  CHECK(memcmp(decoder.frame().data, "hello", 5) == 0);
}

TEST_CASE("the id is never empty: component and chip id") {
  StaticParticipant<0, 0> participant(F("Sensor"));
  JsonBuffer<40> id;
  participant.writeId(id);
  CHECK(strncmp(id.data(), "Sensor", id.length()) == 0);
  participant.setChipId("00a1b2c3d4e5f6a7b8c9");  // cut to 16 characters
  id.clear();
  participant.writeId(id);
  CHECK(id.length() == strlen("Sensor-00a1b2c3d4e5f6a7"));
  CHECK(strncmp(id.data(), "Sensor-00a1b2c3d4e5f6a7", id.length()) == 0);
  StaticParticipant<0, 0> unnamed(F(""));
  id.clear();
  unnamed.writeId(id);
  CHECK(strncmp(id.data(), "MsgfloDevice", id.length()) == 0);
  CHECK(id.length() == strlen("MsgfloDevice"));
}

TEST_CASE("an application error goes out with the device's own seq and a flash text") {
  Rig<link::kMaxFrame> rig;
  const Received hello = rig.one();
  CHECK(hello.body[1] == 254);  // max_frame: the decoder's size
  CHECK(rig.link.sendError(0x80, F("sensor \"A\" lost")));
  const Received error = rig.one();
  CHECK(error.type == FrameType::Error);
  CHECK(error.seq == static_cast<uint8_t>(hello.seq + 1));
  REQUIRE(error.bodyLength == 1 + strlen("sensor \"A\" lost"));
  CHECK(error.body[0] == 0x80);
  CHECK(memcmp(error.body + 1, "sensor \"A\" lost", error.bodyLength - 1) == 0);
  CHECK(rig.link.sendError(0x81, 0));
  CHECK(rig.one().bodyLength == 1);
}
